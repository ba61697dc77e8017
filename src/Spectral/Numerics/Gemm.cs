using System.Runtime.CompilerServices;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Packed, register-blocked GEMM: C[m×n] += alpha·op(A)·op(B), row-major everywhere, in float64 or float32
/// (<see cref="PackedGemm{T}"/>), and the Gram of a matrix's rows on the same packing and tiles.
/// Why our own: the Gram products and the Householder back-accumulation of a 2048-wide group are
/// ~30 GFLOP; a dot-per-entry loop is memory-bound (~4 s), this kernel runs at tens of GFLOP/s per core.
/// The float32 form serves groups whose Gram is built from float32 products (<see cref="GramMatrix.UsesSingle"/>:
/// VGG-16's classifier groups), where forming Q is ~10¹¹ multiply-adds and a float32 tile holds twice the lanes.
/// </summary>
public static unsafe class Gemm
{
    private const int KC = PackedGemm<double>.KC;
    private const int MC = PackedGemm<double>.MC;
    private static int MR => PackedGemm<double>.MR;
    private static int NR => PackedGemm<double>.NR;

    // GramOfRows packs a whole depth panel of every row (MBs for a wide group): kept per thread so the
    // groups after the largest reuse its pages.
    [ThreadStatic] private static double[]? t_gramA;
    [ThreadStatic] private static double[]? t_gramB;
    [ThreadStatic] private static double[]? t_gramPanel;

    private static double[] Grown(ref double[]? buffer, int length) =>
        buffer is { } b && b.Length >= length ? b : buffer = new double[length];

    /// <summary>C += alpha·op(A)·op(B); op(A) is m×k (A stored m×k, or k×m when transA), op(B) is k×n.</summary>
    public static void Multiply(int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, bool transA,
        ReadOnlySpan<double> b, int ldb, bool transB,
        Span<double> c, int ldc) =>
        PackedGemm<double>.Multiply(m, n, k, alpha, a, lda, transA, b, ldb, transB, c, ldc);

    /// <summary>The same in float32: products summed in float32 over the whole depth.</summary>
    internal static void Multiply(int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, bool transA,
        ReadOnlySpan<float> b, int ldb, bool transB,
        Span<float> c, int ldc) =>
        PackedGemm<float>.Multiply(m, n, k, alpha, a, lda, transA, b, ldb, transB, c, ldc);

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
                        PackedGemm<double>.PackA((double*)ap, lda, false, s * mr, p0c, Math.Min(mr, rows - s * mr), kc, (double*)wap + (long)s * mr * kc);
                    int b0 = bSlivers * part / parts, b1 = bSlivers * (part + 1) / parts;
                    for (int s = b0; s < b1; s++)
                        PackedGemm<double>.PackB((double*)ap, lda, true, p0c, s * nr, kc, Math.Min(nr, rows - s * nr), (double*)wbp + (long)s * nr * kc);
                }
                void Block(int bi)
                {
                    int i0 = bi * MC, mc = Math.Min(MC, rows - i0);
                    int ncol = i0 + mc; // columns 0..ncol−1 cover the block's part on and below the diagonal
                    PackedGemm<double>.Macro(mc, ncol, kc, 1.0, (double*)wap + (long)i0 * kc, (double*)wbp, (double*)cp + (long)i0 * rows, rows);
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
}
