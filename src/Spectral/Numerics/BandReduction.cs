using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Eigenvalues only of a large symmetric matrix held as a Gram of float32 products, in two stages: dense → symmetric
/// band of half-bandwidth <see cref="Bandwidth"/> by blocked Householder panels on a float32 copy (per panel, A·V in one
/// pass over the upper triangle and the two-sided update as one float32 GEMM of depth 2b, as the float32 path of
/// <see cref="SymmetricTridiagonal.Reduce(double[], int, bool, bool)"/> updates), then band → tridiagonal by Householder
/// bulge chasing in float64, no vectors kept.
/// Why: the one-stage reduction reads the whole trailing matrix once per column (for n = 4096, ~90 GB streamed,
/// memory-bound); here it is read twice and written once per panel of b columns. At n = 4096: ~2.0 CPU s against ~3.7,
/// eigenvalues within ~2e−8·λ₁ of the one-stage path's. The price: no Q can be formed (the bulge chasing's reflectors
/// are not kept), so only for spectra that nothing factorises (<see cref="FilterSpectrum.EigenvaluesOnly"/>).
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
        var vcs = new float[n * b];   // V as n×b rows (float32), zero where a reflector does not reach
        // Pᵀ = A·V, one per part of the rows (the first ends up holding the sum)
        var partial = new float[mayPar ? Math.Min(Environment.ProcessorCount, 4) : 1][];
        for (int k = 0; k < partial.Length; k++) partial[k] = new float[n * b];
        var vz = new float[2 * b * n]; // [V; Z] and [Z; V] rows (float32) for the trailing update
        var zv = new float[2 * b * n];
        var panel = new double[b * n];
        var tau = new double[b];
        var tw = new double[b * b];
        var mm = new double[b * b];
        var gg = new double[b * b];
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
            Array.Clear(vt); Array.Clear(tau); Array.Clear(vcs);
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
            BlockReflector.Triangular(vt, n, t0, m, tau, nr, tw, Bandwidth);
            // P = Vᵀ·A (nr × m) in float32 from the upper triangle, as Pᵀ = A·V.
            for (int k = 0; k < nr; k++)
                for (int c = t0 + k; c < n; c++) vcs[c * b + k] = (float)vt[k * n + c];
            SymmetricProduct(shadow, n, t0, vcs, partial, mayPar && IdleCores.Any);
            var pts = partial[0];
            for (int c = t0; c < n; c++)
                for (int k = 0; k < nr; k++) pt[k * n + c] = pts[c * b + k];
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
            for (int k = 0; k < nr; k++)
            {
                TP.ConvertTruncating<double, float>(vt.AsSpan(k * n + t0, m), vz.AsSpan(k * n + t0, m));
                TP.ConvertTruncating<double, float>(zt.AsSpan(k * n + t0, m), vz.AsSpan((nr + k) * n + t0, m));
                vz.AsSpan(k * n + t0, m).CopyTo(zv.AsSpan((nr + k) * n + t0, m));
                vz.AsSpan((nr + k) * n + t0, m).CopyTo(zv.AsSpan(k * n + t0, m));
            }
            TrailingUpdate(shadow, n, t0, nr, vz, zv, mayPar && IdleCores.Any);
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

    // Pᵀ = A·V over the trailing block (V, Pᵀ as n×b float32 rows), read from the upper triangle only, in one pass over it
    // (SymvUpper's scheme with b vectors): four stored rows at a time, each entry A[r, c] (c > r) adds A[r, c]·V[c, :] to
    // row r and A[r, c]·V[r, :] to row c. Columns go in chunks whose V and Pᵀ rows stay in L2. The rows are split into
    // `parts` triangles of equal area, each summed into its own Pᵀ, added in order: the bits do not depend on the cores.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SymmetricProduct(double[] shadow, int n, int t0, float[] vcs, float[][] partial, bool parallel)
    {
        const int b = Bandwidth;
        int parts = partial.Length;
        var bounds = SymmetricTridiagonal.SplitTriangle(t0, n, parts);
        // Part boundaries on multiples of 4 rows from t0, so every part's quads are the same.
        for (int k = 1; k < parts; k++) bounds[k] = Math.Min(n, t0 + (bounds[k] - t0 + 3) / 4 * 4);
        void Part(int k)
        {
            var pt = partial[k];
            Array.Clear(pt, t0 * b, (n - t0) * b);
            SymmRows(shadow, n, bounds[k], Math.Max(bounds[k], bounds[k + 1]), vcs, pt);
        }
        if (parallel && parts > 1) Parallel.For(0, parts, Part);
        else for (int k = 0; k < parts; k++) Part(k);
        for (int k = 1; k < parts; k++)
            TP.Add(partial[0].AsSpan(t0 * b, (n - t0) * b), partial[k].AsSpan(t0 * b, (n - t0) * b), partial[0].AsSpan(t0 * b, (n - t0) * b));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SymmRows(double[] shadow, int n, int r0, int r1, float[] vcs, float[] pts)
    {
        const int b = Bandwidth; // two Vector512<float> per row
        const int Chunk = 256;
        fixed (double* ps = shadow)
        fixed (float* pv = vcs, pp = pts)
        {
            float* pa = (float*)ps;
            for (int lo = r0; lo < n; lo += Chunk)
            {
                int hi = Math.Min(n, lo + Chunk);
                int r = r0;
                for (; r + 4 <= r1 && r < hi; r += 4)
                {
                    float* a0 = pa + (long)r * n, a1 = a0 + n, a2 = a1 + n, a3 = a2 + n;
                    int cStart = lo;
                    if (r >= lo)
                    {
                        // the small triangle inside columns r..r+3 (only in the chunk holding it)
                        for (int i = 0; i < 4; i++)
                        {
                            float* ai = a0 + (long)i * n;
                            int ri = r + i;
                            for (int c = ri; c < r + 4; c++)
                            {
                                float x = ai[c];
                                for (int l = 0; l < b; l++) pp[ri * b + l] += x * pv[c * b + l];
                                if (c > ri) for (int l = 0; l < b; l++) pp[c * b + l] += x * pv[ri * b + l];
                            }
                        }
                        cStart = r + 4;
                    }
                    var s00 = Vector512<float>.Zero; var s01 = s00; var s10 = s00; var s11 = s00;
                    var s20 = s00; var s21 = s00; var s30 = s00; var s31 = s00;
                    var x00 = Vector512.Load(pv + r * b); var x01 = Vector512.Load(pv + r * b + 16);
                    var x10 = Vector512.Load(pv + (r + 1) * b); var x11 = Vector512.Load(pv + (r + 1) * b + 16);
                    var x20 = Vector512.Load(pv + (r + 2) * b); var x21 = Vector512.Load(pv + (r + 2) * b + 16);
                    var x30 = Vector512.Load(pv + (r + 3) * b); var x31 = Vector512.Load(pv + (r + 3) * b + 16);
                    for (int c = cStart; c < hi; c++)
                    {
                        var v0 = Vector512.Load(pv + c * b); var v1 = Vector512.Load(pv + c * b + 16);
                        var e0 = Vector512.Create(a0[c]); var e1 = Vector512.Create(a1[c]);
                        var e2 = Vector512.Create(a2[c]); var e3 = Vector512.Create(a3[c]);
                        s00 = Vector512.FusedMultiplyAdd(e0, v0, s00); s01 = Vector512.FusedMultiplyAdd(e0, v1, s01);
                        s10 = Vector512.FusedMultiplyAdd(e1, v0, s10); s11 = Vector512.FusedMultiplyAdd(e1, v1, s11);
                        s20 = Vector512.FusedMultiplyAdd(e2, v0, s20); s21 = Vector512.FusedMultiplyAdd(e2, v1, s21);
                        s30 = Vector512.FusedMultiplyAdd(e3, v0, s30); s31 = Vector512.FusedMultiplyAdd(e3, v1, s31);
                        var p0 = Vector512.Load(pp + c * b); var p1 = Vector512.Load(pp + c * b + 16);
                        p0 = Vector512.FusedMultiplyAdd(e0, x00, p0); p1 = Vector512.FusedMultiplyAdd(e0, x01, p1);
                        p0 = Vector512.FusedMultiplyAdd(e1, x10, p0); p1 = Vector512.FusedMultiplyAdd(e1, x11, p1);
                        p0 = Vector512.FusedMultiplyAdd(e2, x20, p0); p1 = Vector512.FusedMultiplyAdd(e2, x21, p1);
                        p0 = Vector512.FusedMultiplyAdd(e3, x30, p0); p1 = Vector512.FusedMultiplyAdd(e3, x31, p1);
                        p0.Store(pp + c * b); p1.Store(pp + c * b + 16);
                    }
                    AddTo(pp + r * b, s00, s01); AddTo(pp + (r + 1) * b, s10, s11);
                    AddTo(pp + (r + 2) * b, s20, s21); AddTo(pp + (r + 3) * b, s30, s31);
                }
                // Rows left over at the part's end (fewer than 4): one at a time.
                for (; r < r1 && r < hi; r++)
                {
                    float* ar = pa + (long)r * n;
                    for (int c = Math.Max(r, lo); c < hi; c++)
                    {
                        float x = ar[c];
                        for (int l = 0; l < b; l++) pp[r * b + l] += x * pv[c * b + l];
                        if (c > r) for (int l = 0; l < b; l++) pp[c * b + l] += x * pv[r * b + l];
                    }
                }
            }
        }
    }

    private static unsafe void AddTo(float* p, Vector512<float> s0, Vector512<float> s1)
    {
        (Vector512.Load(p) + s0).Store(p);
        (Vector512.Load(p + 16) + s1).Store(p + 16);
    }

    // The float32 trailing matrix (rows/cols ≥ t0) −= V·Zᵀ + Z·Vᵀ as one GEMM of depth 2·nb per block row ([V Z]·[Z V]ᵀ, so
    // each block is read and written once), from the diagonal on, the diagonal tile whole: the lower triangle is never read.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TrailingUpdate(double[] shadow, int n, int t0, int nr, float[] vz, float[] zv, bool parallel)
    {
        int m = n - t0;
        int blocks = (m + Tile - 1) / Tile;
        void Block(int bi)
        {
            int r0 = t0 + bi * Tile, rows = Math.Min(Tile, n - r0);
            var c = MemoryMarshal.Cast<double, float>(shadow.AsSpan()).Slice(r0 * n + r0);
            Gemm.Multiply(rows, n - r0, 2 * nr, -1f, vz.AsSpan(r0), n, true, zv.AsSpan(r0), n, false, c, n);
        }
        if (parallel && blocks > 1) Parallel.For(0, blocks, Block);
        else for (int bi = 0; bi < blocks; bi++) Block(bi);
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
                        double sum = Dot(seg, vv);
                        Axpy(vv, -tau * sum, seg);
                    }
                    // Both sides: the diagonal block r0..r1 (lower view). p = τ·D·v; w' = p − ½τ(pᵀv)v; D −= v·w'ᵀ + w'·vᵀ.
                    var pp = p.AsSpan(0, len);
                    pp.Clear();
                    for (int k = 0; k < len; k++)
                    {
                        var dcol = band.AsSpan((r0 + k) * w, len - k); // D[k.., k]
                        pp[k] += Dot(dcol, vv[k..]);
                        if (k + 1 < len) Axpy(dcol[1..], vv[k], pp[(k + 1)..]);
                    }
                    for (int k = 0; k < len; k++) pp[k] *= tau;
                    double half = -0.5 * tau * Dot(pp, vv);
                    Axpy(vv, half, pp);
                    for (int k = 0; k < len; k++)
                    {
                        var dcol = band.AsSpan((r0 + k) * w, len - k);
                        Axpy(vv[k..], -pp[k], dcol);
                        Axpy(pp[k..], -vv[k], dcol);
                    }
                    // Right: the block below, rows r1+1..min(r1+b, n−1), columns r0..r1: B −= τ·(B·v)·vᵀ.
                    int below = Math.Min(r1 + b, n - 1) - r1;
                    if (below > 0)
                    {
                        var yy = y.AsSpan(0, below);
                        yy.Clear();
                        for (int k = 0; k < len; k++)
                            Axpy(band.AsSpan((r0 + k) * w + (r1 + 1 - r0 - k), below), vv[k], yy);
                        for (int k = 0; k < below; k++) yy[k] *= -tau;
                        for (int k = 0; k < len; k++)
                        {
                            var seg = band.AsSpan((r0 + k) * w + (r1 + 1 - r0 - k), below);
                            Axpy(yy, vv[k], seg);
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

    // Dot product and y += a·x on the short (≤ 2b) columns of the bulge chasing: inlined, no per-call overhead.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        ref double rx = ref MemoryMarshal.GetReference(x), ry = ref MemoryMarshal.GetReference(y);
        int len = x.Length, i = 0;
        double sum = 0;
        if (Vector512.IsHardwareAccelerated && len >= 8)
        {
            var acc = Vector512<double>.Zero;
            for (; i + 8 <= len; i += 8)
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rx, (nuint)i), Vector512.LoadUnsafe(ref ry, (nuint)i), acc);
            sum = Vector512.Sum(acc);
        }
        for (; i < len; i++) sum += Unsafe.Add(ref rx, i) * Unsafe.Add(ref ry, i);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy(ReadOnlySpan<double> x, double a, Span<double> y)
    {
        ref double rx = ref MemoryMarshal.GetReference(x), ry = ref MemoryMarshal.GetReference(y);
        int len = x.Length, i = 0;
        if (y.Length < len) throw new ArgumentException($"destination has {y.Length} values, need {len}");
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i + 8 <= len; i += 8)
                Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rx, (nuint)i), va, Vector512.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        }
        for (; i < len; i++) Unsafe.Add(ref ry, i) += a * Unsafe.Add(ref rx, i);
    }
}
