using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    /// order (so results do not depend on scheduling). Parallel over ranges of i; within a range the rows go
    /// one flush-chunk at a time through every block of i, so the chunk of B stays in cache meanwhile (B is
    /// read once per range, not once per block of i). Without <paramref name="parallel"/> the ranges run in order
    /// (for a caller that is itself one of many parallel tasks): the same sums. Where A and B are both at least
    /// <see cref="PackedWidth"/> wide, <see cref="PackedProducts"/> forms them instead (the same flush, one float32 chain per
    /// entry in row order rather than eight lanes).
    /// </summary>
    /// <param name="lowerOnly">A·Aᵀ, the symmetric case (<paramref name="b"/> is <paramref name="a"/>): only the blocks on or below the diagonal (every j ≤ i, and j &gt; i within a diagonal block).</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Accumulate(float[] a, int na, float[] b, int nb, int rows, int stride, double[] c, int ldc, bool parallel = true, bool lowerOnly = false)
    {
        if (PackedProducts.Available && na >= PackedWidth && nb >= PackedWidth)
        {
            PackedProducts.Accumulate(a, na, b, nb, rows, stride, c, ldc, parallel, lowerOnly);
            return;
        }
        int blocksI = (na + 3) / 4;
        int ranges = Math.Min(blocksI, 4 * Environment.ProcessorCount);
        // Ranges of equal work: with lowerOnly, block row i holds i + 1 blocks, and ranges of equal rows left the last one
        // with 23 % of a wide Gram (8 ranges), which one core finished alone. Each block's sums are the same either way.
        int Boundary(int k) => !lowerOnly ? blocksI * k / ranges : k == ranges ? blocksI : (int)(blocksI * Math.Sqrt((double)k / ranges));
        void Range(int range)
        {
            int first = Boundary(range), end = Boundary(range + 1);
            // Several flushes per pass over C: a 4×4 block keeps its float64 sums in registers from one flush to the next (the
            // same adds in the same order), so C is read and written once per pass, not once per flush.
            for (int r0 = 0; r0 < rows; r0 += Flush * FlushesPerPass)
            {
                int span = Math.Min(Flush * FlushesPerPass, rows - r0);
                // B a tile of rows at a time, so the tile stays in L2 while every block of i passes over it (with all of B at
                // once, a wide B's chunk came from L3 for each block: 14 GFMA per CPU s on 2,617 features, as float64's).
                // Each C entry still gets one add per flush, in flush order.
                for (int jt = 0; jt < nb; jt += ColumnTile)
                    for (int bi = first; bi < end; bi++)
                    {
                        int i0 = bi * 4, jEnd = lowerOnly ? Math.Min(nb, i0 + 4) : nb, jStop = Math.Min(jEnd, jt + ColumnTile);
                        for (int j0 = jt; j0 < jStop; j0 += 4)
                            if (i0 + 4 <= na && j0 + 4 <= jEnd && Vector256.IsHardwareAccelerated && Avx.IsSupported) Block4x4(a, i0, b, j0, r0, span, stride, c, ldc);
                            else
                                for (int f = 0; f < span; f += Flush)
                                    for (int i = i0; i < Math.Min(na, i0 + 4); i++)
                                        for (int j = j0; j < Math.Min(jEnd, j0 + 4); j++)
                                            c[i * ldc + j] += TensorPrimitives.Dot(new ReadOnlySpan<float>(a, i * stride + r0 + f, Math.Min(Flush, span - f)), new ReadOnlySpan<float>(b, j * stride + r0 + f, Math.Min(Flush, span - f)));
                    }
            }
        }
        if (parallel) Parallel.For(0, ranges, Range);
        else for (int range = 0; range < ranges; range++) Range(range);
    }

    /// <summary>
    /// Widths of A and B from which the float32 products go through <see cref="PackedProducts"/>: ResNet-50's fits and
    /// moments, 1,801–4,105 features, 28–41 GFMA per CPU s there against 26–32 here (17:30 UTC pairs on this 2-core
    /// machine: the r50_256 run 152.3 → 140.9 CPU s). Below it the packed slivers are mostly padding. A width, never the
    /// rows: every call on the same equations takes the same path, so the entries above the diagonal either path forms
    /// hold whole sums.
    /// </summary>
    private const int PackedWidth = 64;

    /// <summary>Rows of B per tile in the float32 products: 64 rows of a pass (<see cref="FlushesPerPass"/> flushes, 256 KiB) stay in L2.</summary>
    private const int ColumnTile = 64;

    /// <summary>Rows summed in float32 before a float64 add.</summary>
    public const int Flush = 256;

    /// <summary>Flushes a 4×4 block sums before its float64 sums go back to C (which a wide Gram reads and writes from memory).</summary>
    private const int FlushesPerPass = 4;

    /// <summary>
    /// C[i0.., j0..] (4×4) += the products of rows [r0, r0 + span), one float64 add per <see cref="Flush"/> rows, in order:
    /// each flush's lane sums (eight lanes per entry), then the rows past the lanes added to them in float64, one row at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block4x4(float[] a, int i0, float[] b, int j0, int r0, int span, int stride, double[] c, int ldc)
    {
        ref double c0 = ref c[i0 * ldc + j0], c1 = ref c[(i0 + 1) * ldc + j0], c2 = ref c[(i0 + 2) * ldc + j0], c3 = ref c[(i0 + 3) * ldc + j0];
        var t0 = Vector256.LoadUnsafe(ref c0); var t1 = Vector256.LoadUnsafe(ref c1);
        var t2 = Vector256.LoadUnsafe(ref c2); var t3 = Vector256.LoadUnsafe(ref c3);
        ref float a0 = ref a[i0 * stride + r0], a1 = ref a[(i0 + 1) * stride + r0], a2 = ref a[(i0 + 2) * stride + r0], a3 = ref a[(i0 + 3) * stride + r0];
        ref float b0 = ref b[j0 * stride + r0], b1 = ref b[(j0 + 1) * stride + r0], b2 = ref b[(j0 + 2) * stride + r0], b3 = ref b[(j0 + 3) * stride + r0];
        for (int f = 0; f < span; f += Flush)
        {
            int count = Math.Min(Flush, span - f), lanes = count / 8 * 8;
            Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default;
            Vector256<float> s10 = default, s11 = default, s12 = default, s13 = default;
            Vector256<float> s20 = default, s21 = default, s22 = default, s23 = default;
            Vector256<float> s30 = default, s31 = default, s32 = default, s33 = default;
            for (int r = f; r < f + lanes; r += 8)
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
            var u0 = Sums(s00, s01, s02, s03); var u1 = Sums(s10, s11, s12, s13);
            var u2 = Sums(s20, s21, s22, s23); var u3 = Sums(s30, s31, s32, s33);
            // Product rounded, then added (not fused), as the scalar sum += x·y it stands for.
            for (int r = f + lanes; r < f + count; r++)
            {
                nuint o = (nuint)r;
                var y = Vector256.Create(Unsafe.Add(ref b0, o), Unsafe.Add(ref b1, o), Unsafe.Add(ref b2, o), (double)Unsafe.Add(ref b3, o));
                u0 += Vector256.Create((double)Unsafe.Add(ref a0, o)) * y; u1 += Vector256.Create((double)Unsafe.Add(ref a1, o)) * y;
                u2 += Vector256.Create((double)Unsafe.Add(ref a2, o)) * y; u3 += Vector256.Create((double)Unsafe.Add(ref a3, o)) * y;
            }
            t0 += u0; t1 += u1; t2 += u2; t3 += u3;
        }
        t0.StoreUnsafe(ref c0); t1.StoreUnsafe(ref c1); t2.StoreUnsafe(ref c2); t3.StoreUnsafe(ref c3);
    }

    /// <summary>(Vector256.Sum(s_k)) for k = 0..3, widened: two rounds of horizontal adds give ((v0+v1)+(v2+v3)) in each 128-bit half, then the halves are added, which is Vector256.Sum's order exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Sums(Vector256<float> s0, Vector256<float> s1, Vector256<float> s2, Vector256<float> s3)
    {
        var h = Avx.HorizontalAdd(Avx.HorizontalAdd(s0, s1), Avx.HorizontalAdd(s2, s3));
        return Avx.ConvertToVector256Double(h.GetLower() + h.GetUpper());
    }

    /// <summary>
    /// P = Wᵀ·X for a tile of float32 rows: p[o·pStride + r] = Σ_f w[f·m + o]·x[f·stride + r0 + r] for
    /// r in [0, count). Blocks of 8 (then 4) outputs × 16 rows stay in registers while the features stream by,
    /// <see cref="FeatureBlock"/> features at a time so that block of X (and of W) is read from cache for every
    /// output; the partial sums wait in P between feature blocks. Each entry is one fused multiply-add chain
    /// over f in order, whatever the blocking.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Project(float[] x, int n, int stride, int r0, int count, float[] w, int m, float[] p, int pStride)
    {
        int vectorOutputs = Vector256.IsHardwareAccelerated ? m / 4 * 4 : 0;
        int vectorRows = vectorOutputs > 0 ? count / 16 * 16 : 0;
        for (int f0 = 0; f0 < n; f0 += FeatureBlock)
        {
            int f1 = Math.Min(n, f0 + FeatureBlock);
            int r = 0;
            // 32 rows at a time in 512-bit registers where the CPU has them: the same chain per entry, half the instructions.
            if (Vector512.IsHardwareAccelerated)
                for (; r + 32 <= vectorRows; r += 32)
                {
                    // The block's 32 rows of each feature side by side (feature f at (f − f0)·32), read by every block of
                    // outputs: in place they are a 128-byte run per feature, each on a page of its own (a stored layer's
                    // features lie rows × 4 bytes apart), and the outputs' passes over them missed the TLB on every feature.
                    var packed = t_projectRows ??= new float[FeatureBlock * 32];
                    for (int f = f0; f < f1; f++) Array.Copy(x, (long)f * stride + r0 + r, packed, (f - f0) * 32, 32);
                    int o = 0;
                    for (; o + 8 <= vectorOutputs; o += 8) Project8x32(packed, f0, f1, 32, -f0 * 32, w, m, o, p, pStride, r);
                    for (; o + 4 <= vectorOutputs; o += 4) Project4x32(packed, f0, f1, 32, -f0 * 32, w, m, o, p, pStride, r);
                }
            for (; r < vectorRows; r += 16)
            {
                int o = 0;
                for (; o + 8 <= vectorOutputs; o += 8) Project8x16(x, f0, f1, stride, r0 + r, w, m, o, p, pStride, r);
                for (; o + 4 <= vectorOutputs; o += 4) Project4x16(x, f0, f1, stride, r0 + r, w, m, o, p, pStride, r);
            }
        }
        if (n == 0)
            for (int o = 0; o < vectorOutputs; o++) p.AsSpan(o * pStride, vectorRows).Clear();
        for (int o = 0; o < vectorOutputs; o++) ProjectScalar(x, n, stride, r0, vectorRows, count, w, m, o, p, pStride);
        for (int o = vectorOutputs; o < m; o++) ProjectScalar(x, n, stride, r0, 0, count, w, m, o, p, pStride);
    }

    /// <summary>Features per block in <see cref="Project"/>: 256 rows of X of them (and their rows of W) fit in L2.</summary>
    private const int FeatureBlock = 256;

    [ThreadStatic] private static float[]? t_projectRows;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Project8x16(float[] x, int f0, int f1, int stride, int row, float[] w, int m, int o, float[] p, int pStride, int r)
    {
        Vector256<float> p00 = default, p01 = default, p10 = default, p11 = default, p20 = default, p21 = default, p30 = default, p31 = default;
        Vector256<float> p40 = default, p41 = default, p50 = default, p51 = default, p60 = default, p61 = default, p70 = default, p71 = default;
        if (f0 > 0)
        {
            p00 = Load(p, o, pStride, r); p01 = Load(p, o, pStride, r + 8); p10 = Load(p, o + 1, pStride, r); p11 = Load(p, o + 1, pStride, r + 8);
            p20 = Load(p, o + 2, pStride, r); p21 = Load(p, o + 2, pStride, r + 8); p30 = Load(p, o + 3, pStride, r); p31 = Load(p, o + 3, pStride, r + 8);
            p40 = Load(p, o + 4, pStride, r); p41 = Load(p, o + 4, pStride, r + 8); p50 = Load(p, o + 5, pStride, r); p51 = Load(p, o + 5, pStride, r + 8);
            p60 = Load(p, o + 6, pStride, r); p61 = Load(p, o + 6, pStride, r + 8); p70 = Load(p, o + 7, pStride, r); p71 = Load(p, o + 7, pStride, r + 8);
        }
        for (int f = f0; f < f1; f++)
        {
            ref float xf = ref x[f * stride + row];
            var x0 = Vector256.LoadUnsafe(ref xf);
            var x1 = Vector256.LoadUnsafe(ref xf, 8);
            ref float wf = ref w[f * m + o];
            var w0 = Vector256.Create(wf); p00 = Vector256.FusedMultiplyAdd(w0, x0, p00); p01 = Vector256.FusedMultiplyAdd(w0, x1, p01);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 1)); p10 = Vector256.FusedMultiplyAdd(w0, x0, p10); p11 = Vector256.FusedMultiplyAdd(w0, x1, p11);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 2)); p20 = Vector256.FusedMultiplyAdd(w0, x0, p20); p21 = Vector256.FusedMultiplyAdd(w0, x1, p21);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 3)); p30 = Vector256.FusedMultiplyAdd(w0, x0, p30); p31 = Vector256.FusedMultiplyAdd(w0, x1, p31);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 4)); p40 = Vector256.FusedMultiplyAdd(w0, x0, p40); p41 = Vector256.FusedMultiplyAdd(w0, x1, p41);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 5)); p50 = Vector256.FusedMultiplyAdd(w0, x0, p50); p51 = Vector256.FusedMultiplyAdd(w0, x1, p51);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 6)); p60 = Vector256.FusedMultiplyAdd(w0, x0, p60); p61 = Vector256.FusedMultiplyAdd(w0, x1, p61);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 7)); p70 = Vector256.FusedMultiplyAdd(w0, x0, p70); p71 = Vector256.FusedMultiplyAdd(w0, x1, p71);
        }
        p00.StoreUnsafe(ref p[o * pStride + r]); p01.StoreUnsafe(ref p[o * pStride + r + 8]);
        p10.StoreUnsafe(ref p[(o + 1) * pStride + r]); p11.StoreUnsafe(ref p[(o + 1) * pStride + r + 8]);
        p20.StoreUnsafe(ref p[(o + 2) * pStride + r]); p21.StoreUnsafe(ref p[(o + 2) * pStride + r + 8]);
        p30.StoreUnsafe(ref p[(o + 3) * pStride + r]); p31.StoreUnsafe(ref p[(o + 3) * pStride + r + 8]);
        p40.StoreUnsafe(ref p[(o + 4) * pStride + r]); p41.StoreUnsafe(ref p[(o + 4) * pStride + r + 8]);
        p50.StoreUnsafe(ref p[(o + 5) * pStride + r]); p51.StoreUnsafe(ref p[(o + 5) * pStride + r + 8]);
        p60.StoreUnsafe(ref p[(o + 6) * pStride + r]); p61.StoreUnsafe(ref p[(o + 6) * pStride + r + 8]);
        p70.StoreUnsafe(ref p[(o + 7) * pStride + r]); p71.StoreUnsafe(ref p[(o + 7) * pStride + r + 8]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Project8x32(float[] x, int f0, int f1, int stride, int row, float[] w, int m, int o, float[] p, int pStride, int r)
    {
        Vector512<float> p00 = default, p01 = default, p10 = default, p11 = default, p20 = default, p21 = default, p30 = default, p31 = default;
        Vector512<float> p40 = default, p41 = default, p50 = default, p51 = default, p60 = default, p61 = default, p70 = default, p71 = default;
        if (f0 > 0)
        {
            p00 = Load512(p, o, pStride, r); p01 = Load512(p, o, pStride, r + 16); p10 = Load512(p, o + 1, pStride, r); p11 = Load512(p, o + 1, pStride, r + 16);
            p20 = Load512(p, o + 2, pStride, r); p21 = Load512(p, o + 2, pStride, r + 16); p30 = Load512(p, o + 3, pStride, r); p31 = Load512(p, o + 3, pStride, r + 16);
            p40 = Load512(p, o + 4, pStride, r); p41 = Load512(p, o + 4, pStride, r + 16); p50 = Load512(p, o + 5, pStride, r); p51 = Load512(p, o + 5, pStride, r + 16);
            p60 = Load512(p, o + 6, pStride, r); p61 = Load512(p, o + 6, pStride, r + 16); p70 = Load512(p, o + 7, pStride, r); p71 = Load512(p, o + 7, pStride, r + 16);
        }
        for (int f = f0; f < f1; f++)
        {
            ref float xf = ref x[f * stride + row];
            var x0 = Vector512.LoadUnsafe(ref xf);
            var x1 = Vector512.LoadUnsafe(ref xf, 16);
            ref float wf = ref w[f * m + o];
            var w0 = Vector512.Create(wf); p00 = Vector512.FusedMultiplyAdd(w0, x0, p00); p01 = Vector512.FusedMultiplyAdd(w0, x1, p01);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 1)); p10 = Vector512.FusedMultiplyAdd(w0, x0, p10); p11 = Vector512.FusedMultiplyAdd(w0, x1, p11);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 2)); p20 = Vector512.FusedMultiplyAdd(w0, x0, p20); p21 = Vector512.FusedMultiplyAdd(w0, x1, p21);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 3)); p30 = Vector512.FusedMultiplyAdd(w0, x0, p30); p31 = Vector512.FusedMultiplyAdd(w0, x1, p31);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 4)); p40 = Vector512.FusedMultiplyAdd(w0, x0, p40); p41 = Vector512.FusedMultiplyAdd(w0, x1, p41);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 5)); p50 = Vector512.FusedMultiplyAdd(w0, x0, p50); p51 = Vector512.FusedMultiplyAdd(w0, x1, p51);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 6)); p60 = Vector512.FusedMultiplyAdd(w0, x0, p60); p61 = Vector512.FusedMultiplyAdd(w0, x1, p61);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 7)); p70 = Vector512.FusedMultiplyAdd(w0, x0, p70); p71 = Vector512.FusedMultiplyAdd(w0, x1, p71);
        }
        p00.StoreUnsafe(ref p[o * pStride + r]); p01.StoreUnsafe(ref p[o * pStride + r + 16]);
        p10.StoreUnsafe(ref p[(o + 1) * pStride + r]); p11.StoreUnsafe(ref p[(o + 1) * pStride + r + 16]);
        p20.StoreUnsafe(ref p[(o + 2) * pStride + r]); p21.StoreUnsafe(ref p[(o + 2) * pStride + r + 16]);
        p30.StoreUnsafe(ref p[(o + 3) * pStride + r]); p31.StoreUnsafe(ref p[(o + 3) * pStride + r + 16]);
        p40.StoreUnsafe(ref p[(o + 4) * pStride + r]); p41.StoreUnsafe(ref p[(o + 4) * pStride + r + 16]);
        p50.StoreUnsafe(ref p[(o + 5) * pStride + r]); p51.StoreUnsafe(ref p[(o + 5) * pStride + r + 16]);
        p60.StoreUnsafe(ref p[(o + 6) * pStride + r]); p61.StoreUnsafe(ref p[(o + 6) * pStride + r + 16]);
        p70.StoreUnsafe(ref p[(o + 7) * pStride + r]); p71.StoreUnsafe(ref p[(o + 7) * pStride + r + 16]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Project4x32(float[] x, int f0, int f1, int stride, int row, float[] w, int m, int o, float[] p, int pStride, int r)
    {
        Vector512<float> p00 = default, p01 = default, p10 = default, p11 = default, p20 = default, p21 = default, p30 = default, p31 = default;
        if (f0 > 0)
        {
            p00 = Load512(p, o, pStride, r); p01 = Load512(p, o, pStride, r + 16); p10 = Load512(p, o + 1, pStride, r); p11 = Load512(p, o + 1, pStride, r + 16);
            p20 = Load512(p, o + 2, pStride, r); p21 = Load512(p, o + 2, pStride, r + 16); p30 = Load512(p, o + 3, pStride, r); p31 = Load512(p, o + 3, pStride, r + 16);
        }
        for (int f = f0; f < f1; f++)
        {
            ref float xf = ref x[f * stride + row];
            var x0 = Vector512.LoadUnsafe(ref xf);
            var x1 = Vector512.LoadUnsafe(ref xf, 16);
            ref float wf = ref w[f * m + o];
            var w0 = Vector512.Create(wf); p00 = Vector512.FusedMultiplyAdd(w0, x0, p00); p01 = Vector512.FusedMultiplyAdd(w0, x1, p01);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 1)); p10 = Vector512.FusedMultiplyAdd(w0, x0, p10); p11 = Vector512.FusedMultiplyAdd(w0, x1, p11);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 2)); p20 = Vector512.FusedMultiplyAdd(w0, x0, p20); p21 = Vector512.FusedMultiplyAdd(w0, x1, p21);
            w0 = Vector512.Create(Unsafe.Add(ref wf, 3)); p30 = Vector512.FusedMultiplyAdd(w0, x0, p30); p31 = Vector512.FusedMultiplyAdd(w0, x1, p31);
        }
        p00.StoreUnsafe(ref p[o * pStride + r]); p01.StoreUnsafe(ref p[o * pStride + r + 16]);
        p10.StoreUnsafe(ref p[(o + 1) * pStride + r]); p11.StoreUnsafe(ref p[(o + 1) * pStride + r + 16]);
        p20.StoreUnsafe(ref p[(o + 2) * pStride + r]); p21.StoreUnsafe(ref p[(o + 2) * pStride + r + 16]);
        p30.StoreUnsafe(ref p[(o + 3) * pStride + r]); p31.StoreUnsafe(ref p[(o + 3) * pStride + r + 16]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load512(float[] p, int o, int pStride, int r) => Vector512.LoadUnsafe(ref p[o * pStride + r]);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Project4x16(float[] x, int f0, int f1, int stride, int row, float[] w, int m, int o, float[] p, int pStride, int r)
    {
        Vector256<float> p00 = default, p01 = default, p10 = default, p11 = default, p20 = default, p21 = default, p30 = default, p31 = default;
        if (f0 > 0)
        {
            p00 = Load(p, o, pStride, r); p01 = Load(p, o, pStride, r + 8); p10 = Load(p, o + 1, pStride, r); p11 = Load(p, o + 1, pStride, r + 8);
            p20 = Load(p, o + 2, pStride, r); p21 = Load(p, o + 2, pStride, r + 8); p30 = Load(p, o + 3, pStride, r); p31 = Load(p, o + 3, pStride, r + 8);
        }
        for (int f = f0; f < f1; f++)
        {
            ref float xf = ref x[f * stride + row];
            var x0 = Vector256.LoadUnsafe(ref xf);
            var x1 = Vector256.LoadUnsafe(ref xf, 8);
            ref float wf = ref w[f * m + o];
            var w0 = Vector256.Create(wf); p00 = Vector256.FusedMultiplyAdd(w0, x0, p00); p01 = Vector256.FusedMultiplyAdd(w0, x1, p01);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 1)); p10 = Vector256.FusedMultiplyAdd(w0, x0, p10); p11 = Vector256.FusedMultiplyAdd(w0, x1, p11);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 2)); p20 = Vector256.FusedMultiplyAdd(w0, x0, p20); p21 = Vector256.FusedMultiplyAdd(w0, x1, p21);
            w0 = Vector256.Create(Unsafe.Add(ref wf, 3)); p30 = Vector256.FusedMultiplyAdd(w0, x0, p30); p31 = Vector256.FusedMultiplyAdd(w0, x1, p31);
        }
        p00.StoreUnsafe(ref p[o * pStride + r]); p01.StoreUnsafe(ref p[o * pStride + r + 8]);
        p10.StoreUnsafe(ref p[(o + 1) * pStride + r]); p11.StoreUnsafe(ref p[(o + 1) * pStride + r + 8]);
        p20.StoreUnsafe(ref p[(o + 2) * pStride + r]); p21.StoreUnsafe(ref p[(o + 2) * pStride + r + 8]);
        p30.StoreUnsafe(ref p[(o + 3) * pStride + r]); p31.StoreUnsafe(ref p[(o + 3) * pStride + r + 8]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Load(float[] p, int o, int pStride, int r) => Vector256.LoadUnsafe(ref p[o * pStride + r]);

    /// <summary>
    /// Rows [from, count) of output <paramref name="o"/>: per row, products added in order (multiply, then add,
    /// skipping zero weights), 16 rows in registers at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProjectScalar(float[] x, int n, int stride, int r0, int from, int count, float[] w, int m, int o, float[] p, int pStride)
    {
        int r = from;
        // 64 rows at a time first: eight independent sums hide the add latency that bounds two (a third of the ReLU-aware
        // predictions' time went here on ResNet-50, for the 1–3 outputs past a multiple of 4); each lane adds the same
        // products in the same order either way.
        if (Vector256.IsHardwareAccelerated)
            for (; r + 64 <= count; r += 64)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int f = 0; f < n; f++)
                {
                    float wf = w[f * m + o];
                    if (wf == 0) continue;
                    ref float xf = ref x[f * stride + r0 + r];
                    var v = Vector256.Create(wf);
                    a0 += Vector256.LoadUnsafe(ref xf) * v;
                    a1 += Vector256.LoadUnsafe(ref xf, 8) * v;
                    a2 += Vector256.LoadUnsafe(ref xf, 16) * v;
                    a3 += Vector256.LoadUnsafe(ref xf, 24) * v;
                    a4 += Vector256.LoadUnsafe(ref xf, 32) * v;
                    a5 += Vector256.LoadUnsafe(ref xf, 40) * v;
                    a6 += Vector256.LoadUnsafe(ref xf, 48) * v;
                    a7 += Vector256.LoadUnsafe(ref xf, 56) * v;
                }
                ref float q = ref p[o * pStride + r];
                a0.StoreUnsafe(ref q); a1.StoreUnsafe(ref q, 8); a2.StoreUnsafe(ref q, 16); a3.StoreUnsafe(ref q, 24);
                a4.StoreUnsafe(ref q, 32); a5.StoreUnsafe(ref q, 40); a6.StoreUnsafe(ref q, 48); a7.StoreUnsafe(ref q, 56);
            }
        if (Vector256.IsHardwareAccelerated)
            for (; r + 16 <= count; r += 16)
            {
                Vector256<float> a0 = default, a1 = default;
                for (int f = 0; f < n; f++)
                {
                    float wf = w[f * m + o];
                    if (wf == 0) continue;
                    ref float xf = ref x[f * stride + r0 + r];
                    var v = Vector256.Create(wf);
                    a0 += Vector256.LoadUnsafe(ref xf) * v;
                    a1 += Vector256.LoadUnsafe(ref xf, 8) * v;
                }
                a0.StoreUnsafe(ref p[o * pStride + r]);
                a1.StoreUnsafe(ref p[o * pStride + r + 8]);
            }
        // Nothing left, the common case: this is called for every output past the vector rows, and on empty spans the loop
        // below still made one call per feature (m·n calls a tile, as long as the products themselves on ResNet-50's fits).
        if (r == count) return;
        var po = p.AsSpan(o * pStride + r, count - r);
        po.Clear();
        for (int f = 0; f < n; f++)
            if (w[f * m + o] is var wf && wf != 0)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(x, f * stride + r0 + r, count - r), wf, po, po);
    }
}
