using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Householder reduction of a symmetric matrix to tridiagonal form, S = Q·T·Qᵀ, in float64.
/// Why our own instead of MathNet's <c>Evd</c>: that one is an unvectorised port (24 s for a
/// 2048×2048 Gram on this machine, vectors included); this blocked (LAPACK dsytrd-style) SIMD reduction
/// plus a blocked (GEMM) back-accumulation of Q is what makes a whole ResNet-50 fit in a few seconds.
/// </summary>
internal sealed class SymmetricTridiagonal
{
    private readonly double[] _reflectors; // row i holds reflector i in columns i+2.. (implicit 1 at i+1)
    private readonly double[] _tau;

    private SymmetricTridiagonal(int n, double[] diag, double[] off, double[] reflectors, double[] tau)
    {
        N = n; Diagonal = diag; OffDiagonal = off; _reflectors = reflectors; _tau = tau;
    }

    public int N { get; }
    /// <summary>T's diagonal (length N).</summary>
    public double[] Diagonal { get; }
    /// <summary>T's off-diagonal (length N−1): T[i,i+1] = OffDiagonal[i].</summary>
    public double[] OffDiagonal { get; }

    /// <summary>
    /// Reduces the symmetric row-major n×n matrix <paramref name="a"/>: only its upper triangle (diagonal
    /// included) is read and overwritten; the strict lower triangle is left as it was, so a Gram stored
    /// there survives the reduction (<see cref="LowerGram"/>).
    /// </summary>
    public static SymmetricTridiagonal Reduce(double[] a, int n, bool parallel) => Reduce(a, n, parallel, singleProducts: false);

    /// <summary>
    /// As <see cref="Reduce(double[], int, bool)"/>; with <paramref name="singleProducts"/> the trailing matrix is held in
    /// float32: the matrix-vector products (two thirds of the flops, and all of the memory traffic: one pass over the
    /// trailing matrix per column) read it and sum in float64, and each panel's rank-2k update is a float32 GEMM on it
    /// (<see cref="Gemm"/>'s float32 form). Why: for n = 4096 the products stream ~90 GB from memory, half of it in float32, and
    /// the updates are ~2·10¹⁰ multiply-adds, half the time in float32, with no float64 copy to refresh after each panel;
    /// the float32 rounding (≈6e−8 relative per entry and update) is of the order of that of a Gram built from float32
    /// products (<see cref="SingleGram"/>), the only kind of matrix this is meant for. Rows are widened to float64 when
    /// their panel reaches them: the reflectors and T are float64.
    /// </summary>
    public static SymmetricTridiagonal Reduce(double[] a, int n, bool parallel, bool singleProducts)
    {
        if (a.Length < n * n) throw new ArgumentException($"matrix buffer has {a.Length} values, need {n}*{n}");
        return ReduceBlocked(a, n, parallel, singleProducts);
    }

    // LAPACK dsytrd/dlatrd ("lower", column-major == our upper, row-major): per panel of NB rows the
    // matrix-vector products read the untouched trailing matrix with the panel's pending rank-2k
    // correction carried in (V, W); the trailing matrix is written once per panel by two GEMMs.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static SymmetricTridiagonal ReduceBlocked(double[] a, int n, bool parallel, bool singleProducts)
    {
        const int NB = 32;
        var diag = new double[n];
        var off = new double[n - 1];
        var tau = new double[n];
        // Below ~384 rows a per-column Parallel.For costs more than the matrix-vector product it splits.
        // The product is split into `threads` parts whether or not they run in parallel (IdleCores),
        // so the rounding does not depend on how busy the machine is.
        bool mayPar = parallel && n >= 384 && Environment.ProcessorCount > 1;
        int threads = mayPar ? Math.Min(Environment.ProcessorCount, 4) : 1;
        var partial = new double[threads][];
        for (int t = 0; t < threads; t++) partial[t] = new double[n];
        var wt = new double[NB * n];   // W rows (global column index)
        var vt = new double[NB * n];   // V rows = reflectors (global column index, explicit 1)
        var y = new double[NB];
        var z = new double[NB];
        var p = new double[n];
        var vbuf = new double[n];
        double[]? shadow = null; // float32 values, two per double (a WorkArrays buffer, recycled across reductions)
        float[]? vts = null, wts = null; // V and W rounded to float32 for the float32 trailing updates
        if (singleProducts)
        {
            shadow = WorkArrays.Rent((n * n + 1) / 2);
            Refresh(a, shadow, n, 0, mayPar && IdleCores.Any);
        }

        for (int p0 = 0; p0 < n; p0 += NB)
        {
            int nb = Math.Min(NB, n - p0);
            Array.Clear(wt); Array.Clear(vt);
            for (int k = 0; k < nb; k++)
            {
                int i = p0 + k;
                var row = a.AsSpan(i * n, n);
                // With float32 updates the float32 copy is the trailing matrix: row i comes from it.
                if (shadow is not null)
                    System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<float, double>(
                        System.Runtime.InteropServices.MemoryMarshal.Cast<double, float>(shadow.AsSpan()).Slice(i * n + i, n - i), row[i..]);
                // Bring row i up to date with this panel's earlier reflectors.
                for (int j = 0; j < k; j++)
                {
                    double wji = wt[j * n + i], vji = vt[j * n + i];
                    var seg = row[i..];
                    if (wji != 0) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(vt.AsSpan(j * n + i, n - i), -wji, seg, seg);
                    if (vji != 0) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(wt.AsSpan(j * n + i, n - i), -vji, seg, seg);
                }
                diag[i] = row[i];
                int m = n - i - 1;
                if (m == 0) break;
                if (m == 1) { off[i] = row[i + 1]; tau[i] = 0; continue; }
                double alpha = row[i + 1];
                double sigma = System.Numerics.Tensors.TensorPrimitives.Dot(row[(i + 2)..], row[(i + 2)..]);
                var v = vt.AsSpan(k * n, n);
                if (!(sigma > 0)) { off[i] = alpha; tau[i] = 0; continue; }
                double mu = Math.Sqrt(alpha * alpha + sigma);
                double beta = alpha <= 0 ? mu : -mu;
                double t = (beta - alpha) / beta;
                double scale = 1.0 / (alpha - beta);
                v[i + 1] = 1;
                for (int c = i + 2; c < n; c++) { v[c] = row[c] * scale; row[c] = v[c]; }
                off[i] = beta; tau[i] = t;

                // W_k = symv(original trailing block ≥ i+1, v) − corrections for the panel's pending updates.
                int lo = i + 1;
                v.CopyTo(vbuf);
                if (threads == 1)
                {
                    Array.Clear(p);
                    Symv(a, shadow, n, lo, n, vbuf, p);
                }
                else
                {
                    var bounds = SplitTriangle(lo, n, threads);
                    var vv = vbuf;
                    void Part(int th)
                    {
                        Array.Clear(partial[th]);
                        Symv(a, shadow, n, bounds[th], bounds[th + 1], vv, partial[th]);
                    }
                    if (IdleCores.Any) Parallel.For(0, threads, Part);
                    else for (int th = 0; th < threads; th++) Part(th);
                    Array.Clear(p);
                    for (int th = 0; th < threads; th++)
                        System.Numerics.Tensors.TensorPrimitives.Add(p.AsSpan(lo), partial[th].AsSpan(lo), p.AsSpan(lo));
                }
                var wk = wt.AsSpan(k * n, n);
                var vs = v[lo..];
                for (int j = 0; j < k; j++)
                {
                    y[j] = System.Numerics.Tensors.TensorPrimitives.Dot(wt.AsSpan(j * n + lo, n - lo), vs);
                    z[j] = System.Numerics.Tensors.TensorPrimitives.Dot(vt.AsSpan(j * n + lo, n - lo), vs);
                }
                var ws = wk[lo..];
                p.AsSpan(lo).CopyTo(ws);
                for (int j = 0; j < k; j++)
                {
                    if (y[j] != 0) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(vt.AsSpan(j * n + lo, n - lo), -y[j], ws, ws);
                    if (z[j] != 0) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(wt.AsSpan(j * n + lo, n - lo), -z[j], ws, ws);
                }
                System.Numerics.Tensors.TensorPrimitives.Multiply(ws, t, ws);
                double half = -0.5 * t * System.Numerics.Tensors.TensorPrimitives.Dot(ws, vs);
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(vs, half, ws, ws);
            }
            // Trailing block (rows/cols ≥ p0+nb): A −= Vᵀ·W + Wᵀ·V (V, W as nb×n row blocks).
            int t0 = p0 + nb;
            if (t0 < n)
            {
                if (shadow is null) TrailingUpdate(a, n, t0, nb, vt, wt, mayPar && IdleCores.Any);
                else TrailingUpdateSingle(shadow, n, t0, nb, vt, wt, vts ??= new float[NB * n], wts ??= new float[NB * n], mayPar && IdleCores.Any);
            }
        }
        WorkArrays.Return(shadow);
        return new SymmetricTridiagonal(n, diag, off, a, tau);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TrailingUpdate(double[] a, int n, int t0, int nb, double[] vt, double[] wt, bool parallel)
    {
        const int BS = 128;
        int m = n - t0;
        int blocks = (m + BS - 1) / BS;
        void Block(int b)
        {
            int r0 = t0 + b * BS, rows = Math.Min(BS, n - r0);
            // Right of the diagonal tile: straight into A.
            if (r0 + rows < n) RankTwoUpdate(rows, n - r0 - rows, r0, r0 + rows, nb, vt, wt, n, a.AsSpan(r0 * n + r0 + rows), n);
            // The diagonal tile goes through a scratch tile so that only its upper triangle is written.
            var tile = t_tile ??= new double[BS * BS];
            Array.Clear(tile, 0, rows * rows);
            RankTwoUpdate(rows, rows, r0, r0, nb, vt, wt, n, tile, rows);
            for (int i = 0; i < rows; i++)
                System.Numerics.Tensors.TensorPrimitives.Add(a.AsSpan((r0 + i) * n + r0 + i, rows - i), tile.AsSpan(i * rows + i, rows - i), a.AsSpan((r0 + i) * n + r0 + i, rows - i));
        }
        if (parallel && blocks > 1) Parallel.For(0, blocks, Block);
        else for (int b = 0; b < blocks; b++) Block(b);
    }

    [ThreadStatic] private static double[]? t_tile;

    // The float32 trailing matrix (rows/cols ≥ t0 of the shadow) −= Vᵀ·W + Wᵀ·V, in float32 products and sums. Each block
    // row is updated from its diagonal on, the diagonal tile whole: the shadow's lower triangle is never read.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TrailingUpdateSingle(double[] shadow, int n, int t0, int nb, double[] vt, double[] wt, float[] vts, float[] wts, bool parallel)
    {
        const int BS = 128;
        for (int j = 0; j < nb; j++)
        {
            System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<double, float>(vt.AsSpan(j * n + t0, n - t0), vts.AsSpan(j * n + t0, n - t0));
            System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<double, float>(wt.AsSpan(j * n + t0, n - t0), wts.AsSpan(j * n + t0, n - t0));
        }
        int m = n - t0;
        int blocks = (m + BS - 1) / BS;
        void Block(int b)
        {
            int r0 = t0 + b * BS, rows = Math.Min(BS, n - r0);
            var c = System.Runtime.InteropServices.MemoryMarshal.Cast<double, float>(shadow.AsSpan()).Slice(r0 * n + r0);
            Gemm.Multiply(rows, n - r0, nb, -1f, vts.AsSpan(r0), n, true, wts.AsSpan(r0), n, false, c, n);
            Gemm.Multiply(rows, n - r0, nb, -1f, wts.AsSpan(r0), n, true, vts.AsSpan(r0), n, false, c, n);
        }
        if (parallel && blocks > 1) Parallel.For(0, blocks, Block);
        else for (int b = 0; b < blocks; b++) Block(b);
    }

    // C[rows×cols] −= V[:, r0..]ᵀ·W[:, c0..] + W[:, r0..]ᵀ·V[:, c0..] (V, W as nb×n row blocks).
    private static void RankTwoUpdate(int rows, int cols, int r0, int c0, int nb, double[] vt, double[] wt, int n, Span<double> c, int ldc)
    {
        Gemm.Multiply(rows, cols, nb, -1.0, vt.AsSpan(r0), n, true, wt.AsSpan(c0), n, false, c, ldc);
        Gemm.Multiply(rows, cols, nb, -1.0, wt.AsSpan(r0), n, true, vt.AsSpan(c0), n, false, c, ldc);
    }

    private static void Symv(double[] a, double[]? shadow, int n, int r0, int r1, double[] v, double[] p)
    {
        if (shadow is null) SymvUpper(a, n, r0, r1, v, p);
        else SymvUpperSingle(shadow, n, r0, r1, v, p);
    }

    // The float32 copy of the upper triangle (diagonal included) from row t0 on.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Refresh(double[] a, double[] shadow, int n, int t0, bool parallel)
    {
        void Rows(int part, int parts)
        {
            for (int r = t0 + (n - t0) * part / parts, end = t0 + (n - t0) * (part + 1) / parts; r < end; r++)
                Narrow(a.AsSpan(r * n + r, n - r), System.Runtime.InteropServices.MemoryMarshal.Cast<double, float>(shadow.AsSpan()).Slice(r * n + r, n - r));
        }
        if (parallel && n - t0 >= 512) Parallel.For(0, 4, k => Rows(k, 4));
        else Rows(0, 1);
    }

    private static void Narrow(ReadOnlySpan<double> src, Span<float> dst) => System.Numerics.Tensors.TensorPrimitives.ConvertTruncating(src, dst);

    // SymvUpper on the float32 copy: each value widened to float64 before its multiply-add, so the sums are float64
    // sums of the rounded matrix (the order of operations is SymvUpper's).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SymvUpperSingle(double[] shadow, int n, int r0, int r1, double[] v, double[] p)
    {
        fixed (double* ps = shadow, pv = v, pp = p)
        {
            float* pa = (float*)ps;
            int r = r0;
            for (; r + 4 <= r1; r += 4)
            {
                float* a0 = pa + (long)r * n, a1 = a0 + n, a2 = a1 + n, a3 = a2 + n;
                for (int k = 0; k < 4; k++)
                {
                    float* ak = a0 + (long)k * n;
                    int ri = r + k;
                    pp[ri] += (double)ak[ri] * pv[ri];
                    for (int c = ri + 1; c < r + 4; c++) { pp[ri] += (double)ak[c] * pv[c]; pp[c] += (double)ak[c] * pv[ri]; }
                }
                double x0 = pv[r], x1 = pv[r + 1], x2 = pv[r + 2], x3 = pv[r + 3];
                double d0 = 0, d1 = 0, d2 = 0, d3 = 0;
                int cc = r + 4;
                if (Vector512.IsHardwareAccelerated)
                {
                    var s0 = Vector512<double>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
                    var vx0 = Vector512.Create(x0); var vx1 = Vector512.Create(x1); var vx2 = Vector512.Create(x2); var vx3 = Vector512.Create(x3);
                    for (; cc + 8 <= n; cc += 8)
                    {
                        var vc = Vector512.Load(pv + cc);
                        var e0 = Vector512.WidenLower(Vector256.Load(a0 + cc).ToVector512Unsafe());
                        var e1 = Vector512.WidenLower(Vector256.Load(a1 + cc).ToVector512Unsafe());
                        var e2 = Vector512.WidenLower(Vector256.Load(a2 + cc).ToVector512Unsafe());
                        var e3 = Vector512.WidenLower(Vector256.Load(a3 + cc).ToVector512Unsafe());
                        s0 = Vector512.FusedMultiplyAdd(e0, vc, s0); s1 = Vector512.FusedMultiplyAdd(e1, vc, s1);
                        s2 = Vector512.FusedMultiplyAdd(e2, vc, s2); s3 = Vector512.FusedMultiplyAdd(e3, vc, s3);
                        var acc = Vector512.Load(pp + cc);
                        acc = Vector512.FusedMultiplyAdd(e0, vx0, acc); acc = Vector512.FusedMultiplyAdd(e1, vx1, acc);
                        acc = Vector512.FusedMultiplyAdd(e2, vx2, acc); acc = Vector512.FusedMultiplyAdd(e3, vx3, acc);
                        acc.Store(pp + cc);
                    }
                    d0 = Vector512.Sum(s0); d1 = Vector512.Sum(s1); d2 = Vector512.Sum(s2); d3 = Vector512.Sum(s3);
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    var s0 = Vector256<double>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
                    var vx0 = Vector256.Create(x0); var vx1 = Vector256.Create(x1); var vx2 = Vector256.Create(x2); var vx3 = Vector256.Create(x3);
                    for (; cc + 4 <= n; cc += 4)
                    {
                        var vc = Vector256.Load(pv + cc);
                        var e0 = Vector256.WidenLower(Vector128.Load(a0 + cc).ToVector256Unsafe());
                        var e1 = Vector256.WidenLower(Vector128.Load(a1 + cc).ToVector256Unsafe());
                        var e2 = Vector256.WidenLower(Vector128.Load(a2 + cc).ToVector256Unsafe());
                        var e3 = Vector256.WidenLower(Vector128.Load(a3 + cc).ToVector256Unsafe());
                        s0 = Vector256.FusedMultiplyAdd(e0, vc, s0); s1 = Vector256.FusedMultiplyAdd(e1, vc, s1);
                        s2 = Vector256.FusedMultiplyAdd(e2, vc, s2); s3 = Vector256.FusedMultiplyAdd(e3, vc, s3);
                        var acc = Vector256.Load(pp + cc);
                        acc = Vector256.FusedMultiplyAdd(e0, vx0, acc); acc = Vector256.FusedMultiplyAdd(e1, vx1, acc);
                        acc = Vector256.FusedMultiplyAdd(e2, vx2, acc); acc = Vector256.FusedMultiplyAdd(e3, vx3, acc);
                        acc.Store(pp + cc);
                    }
                    d0 = Vector256.Sum(s0); d1 = Vector256.Sum(s1); d2 = Vector256.Sum(s2); d3 = Vector256.Sum(s3);
                }
                for (; cc < n; cc++)
                {
                    double vc = pv[cc];
                    double b0 = a0[cc], b1 = a1[cc], b2 = a2[cc], b3 = a3[cc];
                    d0 += b0 * vc; d1 += b1 * vc; d2 += b2 * vc; d3 += b3 * vc;
                    pp[cc] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3;
                }
                pp[r] += d0; pp[r + 1] += d1; pp[r + 2] += d2; pp[r + 3] += d3;
            }
            for (; r < r1; r++)
            {
                float* row = pa + (long)r * n;
                double xr = pv[r], dot = row[r] * xr;
                for (int c = r + 1; c < n; c++) { dot += row[c] * pv[c]; pp[c] += row[c] * xr; }
                pp[r] += dot;
            }
        }
    }

    // p += (rows r0..r1 of the upper triangle, symmetric) · v. Four rows per pass so p is loaded and
    // stored once per four rows: the loop is bound by streaming A, not by p.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SymvUpper(double[] a, int n, int r0, int r1, double[] v, double[] p)
    {
        fixed (double* pa = a, pv = v, pp = p)
        {
            int r = r0;
            for (; r + 4 <= r1; r += 4)
            {
                double* a0 = pa + (long)r * n, a1 = a0 + n, a2 = a1 + n, a3 = a2 + n;
                // the small triangle inside columns r..r+3
                for (int k = 0; k < 4; k++)
                {
                    double* ak = a0 + (long)k * n;
                    int ri = r + k;
                    pp[ri] += ak[ri] * pv[ri];
                    for (int c = ri + 1; c < r + 4; c++) { pp[ri] += ak[c] * pv[c]; pp[c] += ak[c] * pv[ri]; }
                }
                double x0 = pv[r], x1 = pv[r + 1], x2 = pv[r + 2], x3 = pv[r + 3];
                double d0 = 0, d1 = 0, d2 = 0, d3 = 0;
                int c0 = r + 4;
                int cc = c0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var s0 = Vector512<double>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
                    var vx0 = Vector512.Create(x0); var vx1 = Vector512.Create(x1); var vx2 = Vector512.Create(x2); var vx3 = Vector512.Create(x3);
                    for (; cc + 8 <= n; cc += 8)
                    {
                        var vc = Vector512.Load(pv + cc);
                        var e0 = Vector512.Load(a0 + cc); var e1 = Vector512.Load(a1 + cc);
                        var e2 = Vector512.Load(a2 + cc); var e3 = Vector512.Load(a3 + cc);
                        s0 = Vector512.FusedMultiplyAdd(e0, vc, s0); s1 = Vector512.FusedMultiplyAdd(e1, vc, s1);
                        s2 = Vector512.FusedMultiplyAdd(e2, vc, s2); s3 = Vector512.FusedMultiplyAdd(e3, vc, s3);
                        var acc = Vector512.Load(pp + cc);
                        acc = Vector512.FusedMultiplyAdd(e0, vx0, acc); acc = Vector512.FusedMultiplyAdd(e1, vx1, acc);
                        acc = Vector512.FusedMultiplyAdd(e2, vx2, acc); acc = Vector512.FusedMultiplyAdd(e3, vx3, acc);
                        acc.Store(pp + cc);
                    }
                    d0 = Vector512.Sum(s0); d1 = Vector512.Sum(s1); d2 = Vector512.Sum(s2); d3 = Vector512.Sum(s3);
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    var s0 = Vector256<double>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
                    var vx0 = Vector256.Create(x0); var vx1 = Vector256.Create(x1); var vx2 = Vector256.Create(x2); var vx3 = Vector256.Create(x3);
                    for (; cc + 4 <= n; cc += 4)
                    {
                        var vc = Vector256.Load(pv + cc);
                        var e0 = Vector256.Load(a0 + cc); var e1 = Vector256.Load(a1 + cc);
                        var e2 = Vector256.Load(a2 + cc); var e3 = Vector256.Load(a3 + cc);
                        s0 = Vector256.FusedMultiplyAdd(e0, vc, s0); s1 = Vector256.FusedMultiplyAdd(e1, vc, s1);
                        s2 = Vector256.FusedMultiplyAdd(e2, vc, s2); s3 = Vector256.FusedMultiplyAdd(e3, vc, s3);
                        var acc = Vector256.Load(pp + cc);
                        acc = Vector256.FusedMultiplyAdd(e0, vx0, acc); acc = Vector256.FusedMultiplyAdd(e1, vx1, acc);
                        acc = Vector256.FusedMultiplyAdd(e2, vx2, acc); acc = Vector256.FusedMultiplyAdd(e3, vx3, acc);
                        acc.Store(pp + cc);
                    }
                    d0 = Vector256.Sum(s0); d1 = Vector256.Sum(s1); d2 = Vector256.Sum(s2); d3 = Vector256.Sum(s3);
                }
                for (; cc < n; cc++)
                {
                    double vc = pv[cc];
                    d0 += a0[cc] * vc; d1 += a1[cc] * vc; d2 += a2[cc] * vc; d3 += a3[cc] * vc;
                    pp[cc] += a0[cc] * x0 + a1[cc] * x1 + a2[cc] * x2 + a3[cc] * x3;
                }
                pp[r] += d0; pp[r + 1] += d1; pp[r + 2] += d2; pp[r + 3] += d3;
            }
            for (; r < r1; r++)
            {
                double* row = pa + (long)r * n;
                double xr = pv[r], dot = row[r] * xr;
                for (int c = r + 1; c < n; c++) { dot += row[c] * pv[c]; pp[c] += row[c] * xr; }
                pp[r] += dot;
            }
        }
    }

    // Row bounds [b_k, b_k+1) giving each thread about the same share of the upper triangle.
    internal static int[] SplitTriangle(int lo, int n, int parts)
    {
        var b = new int[parts + 1];
        b[0] = lo; b[parts] = n;
        double total = 0.5 * (n - lo) * (double)(n - lo + 1);
        double acc = 0; int k = 1;
        for (int r = lo; r < n && k < parts; r++)
        {
            acc += n - r;
            if (acc >= total * k / parts) b[k++] = r + 1;
        }
        for (; k < parts; k++) b[k] = n;
        return b;
    }

    private const int QBlock = 64;

    /// <summary>
    /// Forms Q (row-major n×n, row j = e_jᵀQ) from the reflectors, blocked so the work is two GEMMs
    /// per block of reflectors (I − V·Tw·Vᵀ applied to the trailing part, last block first). A
    /// <see cref="WorkArrays"/> buffer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public double[] FormQ(bool parallel) => FormQ(parallel, default)!;

    /// <summary>As <see cref="FormQ(bool)"/>; null when <paramref name="cancel"/> is set before it is done (checked per block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public double[]? FormQ(bool parallel, CancellationToken cancel) => FormQ(parallel, cancel, single: false);

    /// <summary>
    /// As <see cref="FormQ(bool, CancellationToken)"/>; with <paramref name="single"/> the blocks are applied in float32
    /// (<see cref="Gemm"/>'s float32 form; reflectors and their T factors rounded to float32), and Q is widened to float64 at the
    /// end, in the same buffer. Why: for a Gram built from float32 products (<see cref="GramMatrix.UsesSingle"/>, VGG-16's
    /// classifier groups at n = 4096 and 3072) forming Q is ~10¹¹ multiply-adds, half the time in float32, and Q's rounding
    /// (~1e−6, orthogonality) stays below what the Gram's float32 products already put into G.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public double[]? FormQ(bool parallel, CancellationToken cancel, bool single)
    {
        int n = N;
        var q = WorkArrays.RentCleared(n * n);
        // In float32, Q lives in the buffer's first n² floats (row stride n) and is widened in place at the end.
        if (single)
        {
            var qf = System.Runtime.InteropServices.MemoryMarshal.Cast<double, float>(q.AsSpan());
            for (int i = 0; i < n; i++) qf[i * n + i] = 1;
        }
        else for (int i = 0; i < n; i++) q[i * n + i] = 1;
        int nref = Math.Max(0, n - 2);
        const int NB = QBlock;
        int lastStart = nref == 0 ? 0 : (nref - 1) / NB * NB;
        var tw = new double[NB * NB];
        // Scratch for every block, sized for the first (largest): fresh n²-sized garbage per block
        // would cost more in page faults than the block's GEMMs.
        var vt = new double[NB * n];
        var doubles = single ? null : new BlockScratch<double>(NB, n);
        var floats = single ? new BlockScratch<float>(NB, n) : null;
        for (int b0 = lastStart; b0 >= 0 && nref > 0; b0 -= NB)
        {
            if (cancel.IsCancellationRequested) { WorkArrays.Return(q); return null; }
            int nb = Math.Min(NB, nref - b0);
            int off0 = b0 + 1;           // first row/column touched by this block
            int m = n - off0;
            // Vt: nb × m, row k = reflector b0+k restricted to columns off0..n−1.
            Array.Clear(vt, 0, nb * m);
            for (int k = 0; k < nb; k++)
            {
                int i = b0 + k;
                var dst = vt.AsSpan(k * m, m);
                dst[i + 1 - off0] = 1;
                for (int c = i + 2; c < n; c++) dst[c - off0] = _reflectors[i * n + c];
            }
            BlockReflector.Triangular(vt, m, 0, m, _tau.AsSpan(b0, nb), nb, tw, QBlock);
            if (floats is null) ApplyBlock(q, n, vt, tw, doubles!, nb, off0, parallel);
            else
            {
                System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<double, float>(vt.AsSpan(0, nb * m), floats.Vt.AsSpan(0, nb * m));
                System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<double, float>(tw, floats.Tw);
                ApplyBlock(q, n, floats.Vt, floats.Tw, floats, nb, off0, parallel);
            }
        }
        if (single) WidenInPlace(q, n * n);
        return q;
    }

    /// <summary>A block's scratch in the precision its products run in: W (nb × n), one row of Tw·W, and (float32) Vt and Tw rounded.</summary>
    private sealed class BlockScratch<T>(int nb, int n) where T : unmanaged
    {
        public readonly T[] W = new T[nb * n];
        public readonly T[] Row = new T[n];
        public readonly T[] Vt = typeof(T) == typeof(double) ? [] : new T[nb * n];
        public readonly T[] Tw = typeof(T) == typeof(double) ? [] : new T[nb * nb];
    }

    /// <summary>
    /// Applies one block of reflectors, I − V·Tw·Vᵀ, to the trailing part of Q (from row and column
    /// <paramref name="off0"/>), Q held as T in <paramref name="q"/>'s first n² T values: two GEMMs per column chunk.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ApplyBlock<T>(double[] q, int n, T[] vt, T[] tw, BlockScratch<T> scratch, int nb, int off0, bool parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        const int NB = QBlock;
        int m = n - off0, cols = m;
        // Chunk boundaries change the GEMM's edge tiles (rounding), so they do not depend on IdleCores.
        bool mayPar = parallel && m >= 256 && Environment.ProcessorCount > 1;
        int chunks = mayPar ? Math.Min(Environment.ProcessorCount * 2, (cols + 127) / 128) : 1;
        void Chunk(int ci)
        {
            int c0 = cols * ci / chunks, c1 = cols * (ci + 1) / chunks, w = c1 - c0;
            if (w <= 0) return;
            var wbuf = scratch.W.AsSpan(nb * c0, nb * w);
            var qs = System.Runtime.InteropServices.MemoryMarshal.Cast<double, T>(q.AsSpan()).Slice(off0 * n + off0 + c0);
            // W = Vt · Xsub[:, c0..c1)
            wbuf.Clear();
            PackedGemm<T>.Multiply(nb, w, m, T.One, vt, m, false, qs, n, false, wbuf, w);
            // W = Tw · W (Tw upper triangular, in place from the top row down)
            var tmp = scratch.Row.AsSpan(c0, w);
            for (int r = 0; r < nb; r++)
            {
                tmp.Clear();
                for (int k = r; k < nb; k++)
                {
                    T tk = tw[r * NB + k];
                    if (tk == T.Zero) continue;
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(wbuf.Slice(k * w, w), tk, tmp, tmp);
                }
                tmp.CopyTo(wbuf.Slice(r * w, w));
            }
            // Xsub[:, c0..c1) −= Vtᵀ · W
            PackedGemm<T>.Multiply(m, w, nb, -T.One, vt, m, true, wbuf, w, false, qs, n);
        }
        if (chunks > 1 && IdleCores.Any) Parallel.For(0, chunks, Chunk);
        else for (int ci = 0; ci < chunks; ci++) Chunk(ci);
    }

    // The first `count` floats of `buffer` (viewed as float32) become its first `count` doubles. Backwards: double i
    // occupies floats 2i and 2i+1, which (for i ≥ 1) are at or past float i + 1, already read.
    private static void WidenInPlace(double[] buffer, int count)
    {
        var f = System.Runtime.InteropServices.MemoryMarshal.Cast<double, float>(buffer.AsSpan());
        int i = count;
        const int Step = 16;
        Span<float> block = stackalloc float[Step];
        while (i - Step >= Step) // the block's doubles [i−16, i) are floats [2i−32, 2i), past its floats [i−16, i) when i ≥ 32
        {
            i -= Step;
            f.Slice(i, Step).CopyTo(block);
            for (int k = Step - 1; k >= 0; k--) buffer[i + k] = block[k];
        }
        for (i--; i >= 0; i--) buffer[i] = f[i];
    }

    /// <summary>Eigenvalues of T, descending (implicit QL with Wilkinson shifts, no vectors).</summary>
    public double[] Eigenvalues() => TridiagonalEigen.Eigenvalues(Diagonal, OffDiagonal);
}
