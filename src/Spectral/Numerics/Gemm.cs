using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Packed, register-blocked double GEMM: C[m×n] += alpha·op(A)·op(B), row-major everywhere.
/// Why our own: the Gram products and the Householder back-accumulation of a 2048-wide group are
/// ~30 GFLOP; a dot-per-entry loop is memory-bound (~4 s), this kernel runs at tens of GFLOP/s per core.
/// </summary>
public static unsafe class Gemm
{
    private const int KC = 256;   // depth of one packed panel (A sliver + B sliver stay in L1)
    private const int MC = 96;    // rows of A packed per block (multiple of every MR; ~200 KB, L2)
    private const int NC = 2048;  // columns of B packed per panel (L3)

    private static readonly bool Use512 = Vector512.IsHardwareAccelerated;
    private static readonly bool Use256 = !Use512 && Vector256.IsHardwareAccelerated;
    private static readonly int MR = Use512 ? 6 : 4;
    private static readonly int NR = Use512 ? 16 : Use256 ? 8 : 4;

    [ThreadStatic] private static double[]? t_packA;
    [ThreadStatic] private static double[]? t_packB;
    // GramOfRows packs a whole depth panel of every row (MBs for a wide group): kept per thread so the
    // groups after the largest reuse its pages.
    [ThreadStatic] private static double[]? t_gramA;
    [ThreadStatic] private static double[]? t_gramB;
    [ThreadStatic] private static double[]? t_gramPanel;

    private static double[] Grown(ref double[]? buffer, int length) =>
        buffer is { } b && b.Length >= length ? b : buffer = new double[length];

    /// <summary>C += alpha·op(A)·op(B); op(A) is m×k (A stored m×k, or k×m when transA), op(B) is k×n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, bool transA,
        ReadOnlySpan<double> b, int ldb, bool transB,
        Span<double> c, int ldc)
    {
        if (m <= 0 || n <= 0 || k <= 0) return;
        var packA = t_packA ??= new double[MC * KC];
        var packB = t_packB ??= new double[KC * (NC + 16)];
        fixed (double* pa = a, pb = b, pc = c, wa = packA, wb = packB)
        {
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                for (int p0 = 0; p0 < k; p0 += KC)
                {
                    int kc = Math.Min(KC, k - p0);
                    PackB(pb, ldb, transB, p0, jc, kc, nc, wb);
                    for (int ic = 0; ic < m; ic += MC)
                    {
                        int mc = Math.Min(MC, m - ic);
                        PackA(pa, lda, transA, ic, p0, mc, kc, wa);
                        Macro(mc, nc, kc, alpha, wa, wb, pc + (long)ic * ldc + jc, ldc);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Gram of the rows: C[rows×rows] = A·Aᵀ (full symmetric output). Per depth panel of KC columns the
    /// rows are packed once in both sliver layouts, then every tile on or below the diagonal is
    /// accumulated (half the flops), block rows in parallel when large; finally mirrored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GramOfRows(ReadOnlySpan<double> a, int rows, int cols, Span<double> c, bool parallel)
    {
        fixed (double* pa = a) GramOfRows(pa, cols, null, rows, cols, c, parallel);
    }

    /// <summary>
    /// The same Gram, bit for bit, of rows read from <paramref name="source"/> one depth panel at a time
    /// (rows × KC values) instead of from a stored matrix: a 4096×25088 group needs 8 MB instead of 822 MB.
    /// </summary>
    public static void GramOfRows(IRowSource source, int rows, int cols, Span<double> c, bool parallel)
    {
        ArgumentNullException.ThrowIfNull(source);
        var panel = Grown(ref t_gramPanel, rows * KC);
        fixed (double* pp = panel) GramOfRows(pp, KC, source, rows, cols, c, parallel);
    }

    // a: the rows (row length lda) — the whole matrix, or, with a source, one panel of KC columns it refills.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GramOfRows(double* a, int lda, IRowSource? source, int rows, int cols, Span<double> c, bool parallel)
    {
        if (c.Length < rows * rows) throw new ArgumentException($"output too small: {c.Length} < {rows * rows}");
        c[..(rows * rows)].Clear();
        int mr = MR, nr = NR;
        int aSlivers = (rows + mr - 1) / mr, bSlivers = (rows + nr - 1) / nr;
        var packA = Grown(ref t_gramA, aSlivers * mr * KC);
        var packB = Grown(ref t_gramB, bSlivers * nr * KC);
        int blocks = (rows + MC - 1) / MC;
        bool mayPar = parallel && blocks > 1;
        fixed (double* pc = c, wa = packA, wb = packB)
        {
            var ap = (IntPtr)a; var cp = (IntPtr)pc; var wap = (IntPtr)wa; var wbp = (IntPtr)wb;
            for (int p0 = 0; p0 < cols; p0 += KC)
            {
                int kc = Math.Min(KC, cols - p0);
                int p0c = source is null ? p0 : 0; // a panel holds its columns from 0
                void Fill(int part, int parts)
                {
                    for (int i = rows * part / parts, end = rows * (part + 1) / parts; i < end; i++)
                        source!.Read(i, p0, new Span<double>((double*)ap + (long)i * lda, kc));
                }
                void PackPart(int part, int parts)
                {
                    int a0 = aSlivers * part / parts, a1 = aSlivers * (part + 1) / parts;
                    for (int s = a0; s < a1; s++)
                        PackA((double*)ap, lda, false, s * mr, p0c, Math.Min(mr, rows - s * mr), kc, (double*)wap + (long)s * mr * kc);
                    int b0 = bSlivers * part / parts, b1 = bSlivers * (part + 1) / parts;
                    for (int s = b0; s < b1; s++)
                        PackB((double*)ap, lda, true, p0c, s * nr, kc, Math.Min(nr, rows - s * nr), (double*)wbp + (long)s * nr * kc);
                }
                void Block(int bi)
                {
                    int i0 = bi * MC, mc = Math.Min(MC, rows - i0);
                    int ncol = i0 + mc; // columns 0..ncol−1 cover the block's part on and below the diagonal
                    Macro(mc, ncol, kc, 1.0, (double*)wap + (long)i0 * kc, (double*)wbp, (double*)cp + (long)i0 * rows, rows);
                }
                if (mayPar && IdleCores.Any)
                {
                    if (source is not null) Parallel.For(0, 4, k => Fill(k, 4));
                    Parallel.For(0, 4, k => PackPart(k, 4));
                    Parallel.For(0, blocks, i => Block(blocks - 1 - i)); // largest block rows first
                }
                else
                {
                    if (source is not null) Fill(0, 1);
                    PackPart(0, 1);
                    for (int i = 0; i < blocks; i++) Block(i);
                }
            }
            for (int i = 0; i < rows; i++)
                for (int j = i + 1; j < rows; j++)
                    pc[(long)i * rows + j] = pc[(long)j * rows + i];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]

    private static void PackA(double* a, int lda, bool trans, int i0, int p0, int mc, int kc, double* dst)
    {
        int mr = MR;
        for (int s = 0; s < mc; s += mr)
        {
            int rowsHere = Math.Min(mr, mc - s);
            double* d = dst + (long)s * kc;
            if (!trans)
            {
                for (int r = 0; r < mr; r++)
                {
                    if (r < rowsHere)
                    {
                        double* src = a + (long)(i0 + s + r) * lda + p0;
                        for (int p = 0; p < kc; p++) d[p * mr + r] = src[p];
                    }
                    else for (int p = 0; p < kc; p++) d[p * mr + r] = 0;
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    double* src = a + (long)(p0 + p) * lda + i0 + s;
                    int r = 0;
                    for (; r < rowsHere; r++) d[p * mr + r] = src[r];
                    for (; r < mr; r++) d[p * mr + r] = 0;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]

    private static void PackB(double* b, int ldb, bool trans, int p0, int j0, int kc, int nc, double* dst)
    {
        int nr = NR;
        for (int s = 0; s < nc; s += nr)
        {
            int colsHere = Math.Min(nr, nc - s);
            double* d = dst + (long)s * kc;
            if (!trans)
            {
                if (colsHere == 16 && nr == 16)
                {
                    // whole slivers (the rank-2k updates' and Q's B panels): two vector copies per depth step
                    for (int p = 0; p < kc; p++)
                    {
                        double* src = b + (long)(p0 + p) * ldb + j0 + s;
                        Vector512.Load(src).Store(d + p * 16);
                        Vector512.Load(src + 8).Store(d + p * 16 + 8);
                    }
                    continue;
                }
                for (int p = 0; p < kc; p++)
                {
                    double* src = b + (long)(p0 + p) * ldb + j0 + s;
                    int c = 0;
                    for (; c < colsHere; c++) d[p * nr + c] = src[c];
                    for (; c < nr; c++) d[p * nr + c] = 0;
                }
            }
            else
            {
                for (int c = 0; c < nr; c++)
                {
                    if (c < colsHere)
                    {
                        double* src = b + (long)(j0 + s + c) * ldb + p0;
                        for (int p = 0; p < kc; p++) d[p * nr + c] = src[p];
                    }
                    else for (int p = 0; p < kc; p++) d[p * nr + c] = 0;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]

    private static void Macro(int mc, int nc, int kc, double alpha, double* pa, double* pb, double* c, int ldc)
    {
        int mr = MR, nr = NR;
        double* tmp = stackalloc double[6 * 16];
        for (int j = 0; j < nc; j += nr)
        {
            int nj = Math.Min(nr, nc - j);
            for (int i = 0; i < mc; i += mr)
            {
                int mi = Math.Min(mr, mc - i);
                double* ap = pa + (long)i * kc, bp = pb + (long)j * kc;
                if (mi == mr && nj == nr)
                    Kernel(kc, alpha, ap, bp, c + (long)i * ldc + j, ldc);
                else
                {
                    new Span<double>(tmp, mr * nr).Clear();
                    Kernel(kc, alpha, ap, bp, tmp, nr);
                    for (int r = 0; r < mi; r++)
                        for (int q = 0; q < nj; q++)
                            c[(long)(i + r) * ldc + j + q] += tmp[r * nr + q];
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel(int kc, double alpha, double* a, double* b, double* c, int ldc)
    {
        if (Use512) Kernel6x16(kc, alpha, a, b, c, ldc);
        else if (Use256) Kernel4x8(kc, alpha, a, b, c, ldc);
        else Kernel4x4(kc, alpha, a, b, c, ldc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]

    private static void Kernel6x16(int kc, double alpha, double* a, double* b, double* c, int ldc)
    {
        Vector512<double> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<double> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 8);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            a += 6; b += 16;
        }
        var al = Vector512.Create(alpha);
        Store(c, c00, c01, al); c += ldc; Store(c, c10, c11, al); c += ldc; Store(c, c20, c21, al); c += ldc;
        Store(c, c30, c31, al); c += ldc; Store(c, c40, c41, al); c += ldc; Store(c, c50, c51, al);

        static void Store(double* r, Vector512<double> v0, Vector512<double> v1, Vector512<double> al)
        {
            Vector512.FusedMultiplyAdd(al, v0, Vector512.Load(r)).Store(r);
            Vector512.FusedMultiplyAdd(al, v1, Vector512.Load(r + 8)).Store(r + 8);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]

    private static void Kernel4x8(int kc, double alpha, double* a, double* b, double* c, int ldc)
    {
        Vector256<double> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<double> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 4);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            a += 4; b += 8;
        }
        var al = Vector256.Create(alpha);
        Store(c, c00, c01, al); c += ldc; Store(c, c10, c11, al); c += ldc;
        Store(c, c20, c21, al); c += ldc; Store(c, c30, c31, al);

        static void Store(double* r, Vector256<double> v0, Vector256<double> v1, Vector256<double> al)
        {
            Vector256.FusedMultiplyAdd(al, v0, Vector256.Load(r)).Store(r);
            Vector256.FusedMultiplyAdd(al, v1, Vector256.Load(r + 4)).Store(r + 4);
        }
    }

    private static void Kernel4x4(int kc, double alpha, double* a, double* b, double* c, int ldc)
    {
        double* acc = stackalloc double[16];
        for (int p = 0; p < kc; p++, a += 4, b += 4)
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++)
                    acc[r * 4 + q] += a[r] * b[q];
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++)
                c[(long)r * ldc + q] += alpha * acc[r * 4 + q];
    }
}
