using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Sums of products of feature-major rows, C[i, j] += Σ_r A[i][r]·B[j][r]: float64 through the packed
/// <see cref="Gemm"/> kernel, float32 in register blocks (each load of a row vector feeds several fused
/// multiply-adds instead of one, which is what bounds plain dot products here).
/// </summary>
public static class BlockedProducts
{
    /// <summary>
    /// Adds A·Bᵀ over <paramref name="rows"/> rows into <paramref name="c"/> (row-major, row length
    /// <paramref name="ldc"/>): rows i of A are <c>a[i·stride ..]</c>, rows j of B are <c>b[j·stride ..]</c>.
    /// When <paramref name="lowerOnly"/> (A·Aᵀ, the symmetric case) only what lies on or below the diagonal
    /// blocks is computed: every j ≤ i, and some j &gt; i near the diagonal (correct sums too). Through the
    /// packed <see cref="Gemm"/> kernel, a block of C rows per task.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Accumulate(double[] a, int na, double[] b, int nb, int rows, int stride, double[] c, int ldc, bool lowerOnly)
    {
        if (na <= 0 || nb <= 0 || rows <= 0) return;
        int blocks = (na + RowBlock - 1) / RowBlock;
        void Block(int k)
        {
            int i0 = k * RowBlock, count = Math.Min(RowBlock, na - i0);
            int cols = lowerOnly ? Math.Min(nb, i0 + count) : nb;
            Gemm.Multiply(count, cols, rows, 1.0, a.AsSpan(i0 * stride), stride, false, b, stride, true, c.AsSpan(i0 * ldc), ldc);
        }
        if (blocks > 1 && (long)na * nb * rows >= 1L << 20) Parallel.For(0, blocks, Block);
        else for (int k = 0; k < blocks; k++) Block(k);
    }

    /// <summary>Rows of C per task in the float64 products: large enough that packing B again per task costs little.</summary>
    private const int RowBlock = 192;

    /// <summary>
    /// Float32 rows, float64 sums: C[i, j] += Σ_r A[i][r]·B[j][r] over <paramref name="rows"/> rows, the
    /// products summed in float32 over at most <see cref="Flush"/> rows, then added in float64, in a fixed
    /// order (so results do not depend on scheduling). Parallel over blocks of i.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Accumulate(float[] a, int na, float[] b, int nb, int rows, int stride, double[] c, int ldc)
    {
        Parallel.For(0, (na + 3) / 4, bi =>
        {
            int i0 = bi * 4;
            for (int j0 = 0; j0 < nb; j0 += 4)
                for (int r0 = 0; r0 < rows; r0 += Flush)
                {
                    int count = Math.Min(Flush, rows - r0);
                    if (i0 + 4 <= na && j0 + 4 <= nb && Vector256.IsHardwareAccelerated) Block4x4(a, i0, b, j0, r0, count, stride, c, ldc);
                    else
                        for (int i = i0; i < Math.Min(na, i0 + 4); i++)
                            for (int j = j0; j < Math.Min(nb, j0 + 4); j++)
                                c[i * ldc + j] += TensorPrimitives.Dot(new ReadOnlySpan<float>(a, i * stride + r0, count), new ReadOnlySpan<float>(b, j * stride + r0, count));
                }
        });
    }

    /// <summary>Rows summed in float32 before a float64 add.</summary>
    public const int Flush = 256;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block4x4(float[] a, int i0, float[] b, int j0, int r0, int count, int stride, double[] c, int ldc)
    {
        ref float a0 = ref a[i0 * stride + r0], a1 = ref a[(i0 + 1) * stride + r0], a2 = ref a[(i0 + 2) * stride + r0], a3 = ref a[(i0 + 3) * stride + r0];
        ref float b0 = ref b[j0 * stride + r0], b1 = ref b[(j0 + 1) * stride + r0], b2 = ref b[(j0 + 2) * stride + r0], b3 = ref b[(j0 + 3) * stride + r0];
        Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector256<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector256<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector256<float> s30 = default, s31 = default, s32 = default, s33 = default;
        int r = 0;
        for (; r + 8 <= count; r += 8)
        {
            nuint o = (nuint)r;
            var x0 = Vector256.LoadUnsafe(ref a0, o); var x1 = Vector256.LoadUnsafe(ref a1, o);
            var x2 = Vector256.LoadUnsafe(ref a2, o); var x3 = Vector256.LoadUnsafe(ref a3, o);
            var y0 = Vector256.LoadUnsafe(ref b0, o); var y1 = Vector256.LoadUnsafe(ref b1, o);
            var y2 = Vector256.LoadUnsafe(ref b2, o); var y3 = Vector256.LoadUnsafe(ref b3, o);
            s00 = Vector256.FusedMultiplyAdd(x0, y0, s00); s01 = Vector256.FusedMultiplyAdd(x0, y1, s01);
            s02 = Vector256.FusedMultiplyAdd(x0, y2, s02); s03 = Vector256.FusedMultiplyAdd(x0, y3, s03);
            s10 = Vector256.FusedMultiplyAdd(x1, y0, s10); s11 = Vector256.FusedMultiplyAdd(x1, y1, s11);
            s12 = Vector256.FusedMultiplyAdd(x1, y2, s12); s13 = Vector256.FusedMultiplyAdd(x1, y3, s13);
            s20 = Vector256.FusedMultiplyAdd(x2, y0, s20); s21 = Vector256.FusedMultiplyAdd(x2, y1, s21);
            s22 = Vector256.FusedMultiplyAdd(x2, y2, s22); s23 = Vector256.FusedMultiplyAdd(x2, y3, s23);
            s30 = Vector256.FusedMultiplyAdd(x3, y0, s30); s31 = Vector256.FusedMultiplyAdd(x3, y1, s31);
            s32 = Vector256.FusedMultiplyAdd(x3, y2, s32); s33 = Vector256.FusedMultiplyAdd(x3, y3, s33);
        }
        Span<double> sums = stackalloc double[16];
        sums[0] = Vector256.Sum(s00); sums[1] = Vector256.Sum(s01); sums[2] = Vector256.Sum(s02); sums[3] = Vector256.Sum(s03);
        sums[4] = Vector256.Sum(s10); sums[5] = Vector256.Sum(s11); sums[6] = Vector256.Sum(s12); sums[7] = Vector256.Sum(s13);
        sums[8] = Vector256.Sum(s20); sums[9] = Vector256.Sum(s21); sums[10] = Vector256.Sum(s22); sums[11] = Vector256.Sum(s23);
        sums[12] = Vector256.Sum(s30); sums[13] = Vector256.Sum(s31); sums[14] = Vector256.Sum(s32); sums[15] = Vector256.Sum(s33);
        for (; r < count; r++)
            for (int i = 0; i < 4; i++)
            {
                double x = a[(i0 + i) * stride + r0 + r];
                for (int j = 0; j < 4; j++) sums[i * 4 + j] += x * b[(j0 + j) * stride + r0 + r];
            }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) c[(i0 + i) * ldc + j0 + j] += sums[i * 4 + j];
    }

    /// <summary>
    /// P = Wᵀ·X for a tile of float32 rows: p[o·pStride + r] = Σ_f w[f·m + o]·x[f·stride + r0 + r] for
    /// r in [0, count). Blocks of 4 outputs × 16 rows stay in registers while the features stream by.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Project(float[] x, int n, int stride, int r0, int count, float[] w, int m, float[] p, int pStride)
    {
        int o = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; o + 4 <= m; o += 4)
            {
                int r = 0;
                for (; r + 16 <= count; r += 16)
                {
                    Vector256<float> p00 = default, p01 = default, p10 = default, p11 = default;
                    Vector256<float> p20 = default, p21 = default, p30 = default, p31 = default;
                    for (int f = 0; f < n; f++)
                    {
                        ref float xf = ref x[f * stride + r0 + r];
                        var x0 = Vector256.LoadUnsafe(ref xf);
                        var x1 = Vector256.LoadUnsafe(ref xf, 8);
                        int wf = f * m + o;
                        var w0 = Vector256.Create(w[wf]); var w1 = Vector256.Create(w[wf + 1]);
                        var w2 = Vector256.Create(w[wf + 2]); var w3 = Vector256.Create(w[wf + 3]);
                        p00 = Vector256.FusedMultiplyAdd(w0, x0, p00); p01 = Vector256.FusedMultiplyAdd(w0, x1, p01);
                        p10 = Vector256.FusedMultiplyAdd(w1, x0, p10); p11 = Vector256.FusedMultiplyAdd(w1, x1, p11);
                        p20 = Vector256.FusedMultiplyAdd(w2, x0, p20); p21 = Vector256.FusedMultiplyAdd(w2, x1, p21);
                        p30 = Vector256.FusedMultiplyAdd(w3, x0, p30); p31 = Vector256.FusedMultiplyAdd(w3, x1, p31);
                    }
                    p00.StoreUnsafe(ref p[o * pStride + r]); p01.StoreUnsafe(ref p[o * pStride + r + 8]);
                    p10.StoreUnsafe(ref p[(o + 1) * pStride + r]); p11.StoreUnsafe(ref p[(o + 1) * pStride + r + 8]);
                    p20.StoreUnsafe(ref p[(o + 2) * pStride + r]); p21.StoreUnsafe(ref p[(o + 2) * pStride + r + 8]);
                    p30.StoreUnsafe(ref p[(o + 3) * pStride + r]); p31.StoreUnsafe(ref p[(o + 3) * pStride + r + 8]);
                }
                for (int k = o; k < o + 4; k++) ProjectScalar(x, n, stride, r0, r, count, w, m, k, p, pStride);
            }
        for (; o < m; o++) ProjectScalar(x, n, stride, r0, 0, count, w, m, o, p, pStride);
    }

    private static void ProjectScalar(float[] x, int n, int stride, int r0, int from, int count, float[] w, int m, int o, float[] p, int pStride)
    {
        var po = p.AsSpan(o * pStride + from, count - from);
        po.Clear();
        for (int f = 0; f < n; f++)
            if (w[f * m + o] is var wf && wf != 0)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(x, f * stride + r0 + from, count - from), wf, po, po);
    }
}
