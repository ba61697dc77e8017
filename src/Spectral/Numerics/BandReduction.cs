using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Eigenvalues only of a large symmetric matrix held as a Gram of float32 products, in two stages: dense → symmetric
/// band of half-bandwidth <see cref="Bandwidth"/> by blocked Householder panels (each panel's two-sided update of the
/// trailing matrix is a float32 GEMM, as in <see cref="SymmetricTridiagonal.Reduce(double[], int, bool, bool)"/>'s
/// float32 path), then band → tridiagonal by Householder bulge chasing in float64, no vectors kept.
/// Why: the one-stage reduction reads the whole trailing matrix once per column (for n = 4096, ~90 GB streamed,
/// memory-bound); a panel of b columns reads it a few times per panel instead, b times less traffic. The price is
/// that no Q can be formed (the bulge chasing's reflectors are not kept): only for spectra nothing factorises.
/// </summary>
internal static class BandReduction
{
    /// <summary>Half-bandwidth of the intermediate band.</summary>
    public const int Bandwidth = 32;
    private const int Tile = 128;

    /// <summary>
    /// Tridiagonal form (diagonal, off-diagonal) similar to the symmetric row-major n×n matrix <paramref name="a"/>, of
    /// which only the upper triangle (diagonal included) is read; <paramref name="a"/> is not written.
    /// </summary>
    public static (double[] Diagonal, double[] OffDiagonal) Tridiagonal(double[] a, int n, bool parallel)
    {
        if (n < 1) throw new ArgumentException($"n must be at least 1, got {n}", nameof(n));
        if (a.Length < (long)n * n) throw new ArgumentException($"matrix buffer has {a.Length} values, need {n}*{n}");
        const int b = Bandwidth;
        // Band storage, lower view: band[c·W + d] = A[c+d, c] (= A[c, c+d]), d ≤ 2b leaves room for the bulges.
        const int W = 2 * b + 1;
        var band = new double[(long)n * W];
        ToBand(a, n, band, W, parallel);
        return Chase(band, n, W);
    }

    /// <summary>Eigenvalues, descending (see <see cref="Tridiagonal"/>).</summary>
    public static double[] Eigenvalues(double[] a, int n, bool parallel)
    {
        var (d, e) = Tridiagonal(a, n, parallel);
        return TridiagonalEigen.Eigenvalues(d, e);
    }

    // Stage 1. Panel at rows j..j+b−1: its part right of the band (columns t0 = j+b ..) is reduced by b reflectors acting
    // on columns t0.. (an LQ of the b×m block, in float64), whose product Q = I − V·T·Vᵀ then updates the trailing
    // float32 matrix: A ← QᵀAQ = A − V·Zᵀ − Z·Vᵀ, Z = A·V·T − ½·V·(TᵀVᵀA·V·T).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ToBand(double[] a, int n, double[] band, int w, bool parallel)
    {
        const int b = Bandwidth;
        bool mayPar = parallel && n >= 512 && Environment.ProcessorCount > 1;
        var shadow = WorkArrays.Rent((int)(((long)n * n + 1) / 2));
        SymmetricTridiagonal.Refresh(a, shadow, n, 0, mayPar && IdleCores.Any);
        var s = MemoryMarshal.Cast<double, float>(shadow.AsSpan());
        var vt = new double[b * n];   // reflectors, rows (global column index, explicit 1)
        var zt = new double[b * n];   // Z's rows
        var pt = new float[b * n];    // Vᵀ·A rows in float32
        var vts = new float[b * n];
        var panel = new double[b * n];
        var tau = new double[b];
        var tw = new double[b * b];
        var mm = new double[b * b];
        var gg = new double[b * b];
        var wts = new float[b * n];
        var dots = new double[b];
        for (int j = 0; j < n; j += b)
        {
            int t0 = j + b;
            int rowsHere = Math.Min(b, n - j);
            // The diagonal tile is final: its upper triangle goes into the band.
            for (int k = 0; k < rowsHere; k++)
                for (int c = j + k; c < Math.Min(t0, n); c++) band[(long)(j + k) * w + (c - j - k)] = s[(int)((long)(j + k) * n + c)];
            if (t0 >= n) break;
            int m = n - t0;
            int nr = Math.Min(b, m);
            // The panel b×m in float64, reduced row by row.
            for (int k = 0; k < b; k++)
                TP.ConvertTruncating<float, double>(s.Slice((j + k) * n + t0, m), panel.AsSpan(k * m, m));
            Array.Clear(vt); Array.Clear(tau);
            for (int k = 0; k < nr; k++)
            {
                var row = panel.AsSpan(k * m + k, m - k);
                var v = vt.AsSpan(k * n + t0 + k, m - k);
                tau[k] = Reflector(row, v);
                if (tau[k] != 0)
                    for (int r = k + 1; r < b; r++)
                    {
                        var other = panel.AsSpan(r * m + k, m - k);
                        double sum = TP.Dot(other, v);
                        TP.MultiplyAdd(v, -tau[k] * sum, other, other);
                    }
            }
            // Row k's entries left of (and at) its reflector: L[k, c] = A[j+k, t0+c], c ≤ k, at band offset b+c−k.
            for (int k = 0; k < b; k++)
                for (int c = 0; c <= Math.Min(k, m - 1); c++) band[(long)(j + k) * w + (b + c - k)] = panel[k * m + c];
            BuildT(vt, n, t0, m, nr, tau, tw);
            // P = Vᵀ·A (nr × m) in float32 from the upper triangle.
            for (int k = 0; k < nr; k++) TP.ConvertTruncating<double, float>(vt.AsSpan(k * n + t0, m), vts.AsSpan(k * n + t0, m));
            SymmetricProduct(shadow, n, t0, nr, vts, pt, mayPar && IdleCores.Any);
            // X = Tᵀ·P (rows), M = X·V, Z = X − ½·M·V.
            Array.Clear(zt);
            for (int i = 0; i < nr; i++)
            {
                var xi = zt.AsSpan(i * n + t0, m);
                for (int k = 0; k <= i; k++)
                {
                    double tki = tw[k * b + i];
                    if (tki == 0) continue;
                    var pk = pt.AsSpan(k * n + t0, m);
                    WidenAdd(pk, tki, xi);
                }
            }
            // G = Vᵀ·X, M = Tᵀ·G (symmetric up to rounding: TᵀVᵀAVT).
            for (int i = 0; i < nr; i++)
                for (int k = 0; k < nr; k++) gg[i * b + k] = TP.Dot(vt.AsSpan(i * n + t0, m), zt.AsSpan(k * n + t0, m));
            for (int i = 0; i < nr; i++)
                for (int k = 0; k < nr; k++)
                {
                    double sum = 0;
                    for (int l = 0; l <= i; l++) sum += tw[l * b + i] * gg[l * b + k];
                    mm[i * b + k] = sum;
                }
            for (int i = 0; i < nr; i++)
            {
                for (int k = 0; k < nr; k++) dots[k] = 0.25 * (mm[i * b + k] + mm[k * b + i]); // ½·M[k, i], symmetrised
                var zi = zt.AsSpan(i * n + t0, m);
                for (int k = 0; k < nr; k++) if (dots[k] != 0) TP.MultiplyAdd(vt.AsSpan(k * n + t0, m), -dots[k], zi, zi);
            }
            SymmetricTridiagonal.TrailingUpdateSingle(shadow, n, t0, nr, vt, zt, vts, wts, mayPar && IdleCores.Any);
        }
        WorkArrays.Return(shadow);
    }

    private static void WidenAdd(ReadOnlySpan<float> x, double alpha, Span<double> y)
    {
        Span<double> buf = stackalloc double[256];
        for (int i = 0; i < x.Length; i += 256)
        {
            int len = Math.Min(256, x.Length - i);
            TP.ConvertTruncating<float, double>(x.Slice(i, len), buf[..len]);
            TP.MultiplyAdd(buf[..len], alpha, y.Slice(i, len), y.Slice(i, len));
        }
    }

    // P[:, cols ≥ t0] = Vt·A over the trailing block (nr rows of Vt in float32, global column index), read from the upper
    // triangle only: per column block C, the rows above it (GEMM on the stored column block), its diagonal tile mirrored
    // into a scratch tile, and the rows right of it transposed. Each block writes only its own columns of P.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SymmetricProduct(double[] shadow, int n, int t0, int nr, float[] vts, float[] pt, bool parallel)
    {
        int m = n - t0;
        int blocks = (m + Tile - 1) / Tile;
        void Block(int bi)
        {
            int c0 = t0 + bi * Tile, cols = Math.Min(Tile, n - c0), c1 = c0 + cols;
            var s = MemoryMarshal.Cast<double, float>(shadow.AsSpan());
            var p = pt.AsSpan(c0);
            for (int k = 0; k < nr; k++) pt.AsSpan(k * n + c0, cols).Clear();
            if (c0 > t0) Gemm.Multiply(nr, cols, c0 - t0, 1f, vts.AsSpan(t0), n, false, s.Slice(t0 * n + c0), n, false, p, n);
            var tile = t_tile ??= new float[Tile * Tile];
            for (int r = 0; r < cols; r++)
            {
                var src = s.Slice((c0 + r) * n + c0 + r, cols - r);
                src.CopyTo(tile.AsSpan(r * cols + r, cols - r));
                for (int c = r + 1; c < cols; c++) tile[c * cols + r] = src[c - r];
            }
            Gemm.Multiply(nr, cols, cols, 1f, vts.AsSpan(c0), n, false, tile, cols, false, p, n);
            if (c1 < n) Gemm.Multiply(nr, cols, n - c1, 1f, vts.AsSpan(c1), n, false, s.Slice(c0 * n + c1), n, true, p, n);
        }
        if (parallel && blocks > 1) Parallel.For(0, blocks, Block);
        else for (int bi = 0; bi < blocks; bi++) Block(bi);
    }

    [ThreadStatic] private static float[]? t_tile;

    // dlarft (forward, columnwise) for the reflectors in vt's rows (columns t0.., m long): H_0⋯H_{nr−1} = I − V·T·Vᵀ.
    private static void BuildT(double[] vt, int n, int t0, int m, int nr, double[] tau, double[] tw)
    {
        const int b = Bandwidth;
        Array.Clear(tw);
        Span<double> t = stackalloc double[b];
        for (int i = 0; i < nr; i++)
        {
            tw[i * b + i] = tau[i];
            if (i == 0 || tau[i] == 0) continue;
            var vi = vt.AsSpan(i * n + t0, m);
            for (int k = 0; k < i; k++) t[k] = -tau[i] * TP.Dot(vt.AsSpan(k * n + t0, m), vi);
            for (int r = 0; r < i; r++)
            {
                double sum = 0;
                for (int k = r; k < i; k++) sum += tw[r * b + k] * t[k];
                tw[r * b + i] = sum;
            }
        }
    }

    // Householder reflector H = I − τ·v·vᵀ with H·x = (β, 0, …): v[0] = 1 and x becomes (β, 0, …). Returns τ (0: H = I).
    private static double Reflector(Span<double> x, Span<double> v)
    {
        v[0] = 1;
        if (x.Length < 2) { v[1..].Clear(); return 0; }
        double alpha = x[0];
        double sigma = TP.Dot(x[1..], x[1..]);
        if (!(sigma > 0)) { v[1..].Clear(); return 0; }
        double mu = Math.Sqrt(alpha * alpha + sigma);
        double beta = alpha <= 0 ? mu : -mu;
        double tau = (beta - alpha) / beta;
        TP.Multiply(x[1..], 1.0 / (alpha - beta), v[1..]);
        x[0] = beta;
        x[1..].Clear();
        return tau;
    }

    // Stage 2: Householder bulge chasing on the band (lower view, column c's entries A[c.., c] contiguous). Sweep j
    // reduces column j to one off-diagonal entry with a reflector on rows j+1..j+b; applied from the right, it fills the
    // block below (rows up to j+2b) outside the band; that block's first column is reduced by the next reflector, and so
    // on down the matrix. Remaining fill in a block's other columns is removed by the later sweeps, which reach it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (double[], double[]) Chase(double[] band, int n, int w)
    {
        const int b = Bandwidth;
        var v = new double[b];
        var p = new double[b];
        var y = new double[b];
        for (int j = 0; j + 2 < n; j++)
        {
            // The column to reduce: rows r0..r1 of column c.
            int c = j, r0 = j + 1, r1 = Math.Min(j + b, n - 1);
            while (r1 - r0 + 1 >= 2)
            {
                int len = r1 - r0 + 1;
                var col = band.AsSpan(c * w + (r0 - c), len);
                double tau = Reflector(col, v.AsSpan(0, len));
                if (tau != 0)
                {
                    var vv = v.AsSpan(0, len);
                    // Left: the columns c+1..r0−1 in rows r0..r1.
                    for (int cc = c + 1; cc < r0; cc++)
                    {
                        var seg = band.AsSpan(cc * w + (r0 - cc), len);
                        double sum = TP.Dot(seg, vv);
                        TP.MultiplyAdd(vv, -tau * sum, seg, seg);
                    }
                    // Both sides: the diagonal block r0..r1 (lower view). p = τ·D·v; w' = p − ½τ(pᵀv)v; D −= v·w'ᵀ + w'·vᵀ.
                    var pp = p.AsSpan(0, len);
                    pp.Clear();
                    for (int k = 0; k < len; k++)
                    {
                        var dcol = band.AsSpan((r0 + k) * w, len - k); // D[k.., k]
                        pp[k] += TP.Dot(dcol, vv[k..]);
                        if (k + 1 < len) TP.MultiplyAdd(dcol[1..], vv[k], pp[(k + 1)..], pp[(k + 1)..]);
                    }
                    TP.Multiply(pp, tau, pp);
                    double half = -0.5 * tau * TP.Dot(pp, vv);
                    TP.MultiplyAdd(vv, half, pp, pp);
                    for (int k = 0; k < len; k++)
                    {
                        var dcol = band.AsSpan((r0 + k) * w, len - k);
                        TP.MultiplyAdd(vv[k..], -pp[k], dcol, dcol);
                        TP.MultiplyAdd(pp[k..], -vv[k], dcol, dcol);
                    }
                    // Right: the block below, rows r1+1..min(r1+b, n−1), columns r0..r1: B −= τ·(B·v)·vᵀ.
                    int below = Math.Min(r1 + b, n - 1) - r1;
                    if (below > 0)
                    {
                        var yy = y.AsSpan(0, below);
                        yy.Clear();
                        for (int k = 0; k < len; k++)
                            TP.MultiplyAdd(band.AsSpan((r0 + k) * w + (r1 + 1 - r0 - k), below), vv[k], yy, yy);
                        TP.Multiply(yy, -tau, yy);
                        for (int k = 0; k < len; k++)
                        {
                            var seg = band.AsSpan((r0 + k) * w + (r1 + 1 - r0 - k), below);
                            TP.MultiplyAdd(yy, vv[k], seg, seg);
                        }
                    }
                }
                // Next: the first column of the block below.
                c = r0;
                r0 = r1 + 1;
                r1 = Math.Min(r1 + b, n - 1);
            }
        }
        var d = new double[n];
        var e = new double[Math.Max(0, n - 1)];
        for (int i = 0; i < n; i++) d[i] = band[(long)i * w];
        for (int i = 0; i + 1 < n; i++) e[i] = band[(long)i * w + 1];
        return (d, e);
    }
}
