using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// The float32 form of <see cref="BlockedProducts"/> for wide products, C[i, j] += Σ_r A[i][r]·B[j][r] over feature-major
/// rows, through packed register tiles: per depth panel of <see cref="Panel"/> rows, both operands are copied into slivers
/// of <see cref="Width"/> values (row r of a sliver holds its 32 values side by side), and each 8 × 32 block of C is one
/// tile of sixteen 512-bit float32 sums, one fused multiply-add chain per entry over the panel's rows in order, then added
/// to C in float64. Why: the dot-product blocks of <see cref="BlockedProducts"/> fold eight lanes per entry every
/// <see cref="BlockedProducts.Flush"/> rows and load two vectors per two products; here one vector of B and one broadcast
/// of A feed sixteen products and nothing is folded. The tiling depends only on the widths, never on the rows or the
/// cores, so the sums are the same bits however the rows are split into calls or the blocks over threads.
/// </summary>
internal static unsafe class PackedProducts
{
    /// <summary>Rows summed in float32 before each float64 add: <see cref="BlockedProducts.Flush"/>.</summary>
    public const int Panel = BlockedProducts.Flush;

    /// <summary>Values per sliver: the tile's columns (two 512-bit float32 vectors).</summary>
    private const int Width = 32;

    /// <summary>The tile's rows: an 8-value run of an A sliver, read in place (A is packed as B is).</summary>
    private const int Height = 8;

    /// <summary>Panels packed before each pass over C, so C is read and written once per four panels' tiles, not per panel.</summary>
    private const int Panels = 4;

    /// <summary>Rows and columns of C per parallel task (a task above the diagonal of a lowerOnly product has nothing to do).</summary>
    private const int BlockRows = 64, BlockColumns = 256;

    /// <summary>Whether the CPU has the 512-bit vectors the tiles use.</summary>
    public static bool Available => Vector512.IsHardwareAccelerated;

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>
    /// C[i, j] += Σ_r A[i][r]·B[j][r], rows i of A at <c>a[i·stride ..]</c>, rows j of B at <c>b[j·stride ..]</c>, C row-major
    /// with row length <paramref name="ldc"/>. With <paramref name="lowerOnly"/> (A·Aᵀ: <paramref name="b"/> is
    /// <paramref name="a"/>) only the tiles that reach j ≤ i are formed: every j ≤ i, and j &gt; i within such a tile
    /// (correct sums too, the same entries every call).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Accumulate(float[] a, int na, float[] b, int nb, int rows, int stride, double[] c, int ldc, bool parallel, bool lowerOnly)
    {
        if (!Available) throw new PlatformNotSupportedException("packed float32 products need 512-bit vectors");
        if (na <= 0 || nb <= 0 || rows <= 0) return;
        if (lowerOnly && !ReferenceEquals(a, b)) throw new ArgumentException("lowerOnly products are of A with itself");
        bool same = ReferenceEquals(a, b) && na == nb;
        int aSlivers = (na + Width - 1) / Width, bSlivers = (nb + Width - 1) / Width;
        long aPanel = (long)aSlivers * Width * Panel, bPanel = (long)bSlivers * Width * Panel;
        var packA = Grown(ref t_packA, aPanel * Panels);
        var packB = same ? packA : Grown(ref t_packB, bPanel * Panels);
        int columnBlocks = (nb + BlockColumns - 1) / BlockColumns, blocks = (na + BlockRows - 1) / BlockRows * columnBlocks;
        var depths = new int[Panels];
        for (int q0 = 0; q0 < rows; q0 += Panels * Panel)
        {
            int count = Math.Min(Panels, (rows - q0 + Panel - 1) / Panel);
            for (int g = 0; g < count; g++) depths[g] = Math.Min(Panel, rows - q0 - g * Panel);
            int slivers = aSlivers + (same ? 0 : bSlivers);
            void Pack(int s)
            {
                bool ofA = s < aSlivers;
                int sliver = ofA ? s : s - aSlivers;
                var source = ofA ? a : b;
                int width = ofA ? na : nb;
                var pack = ofA ? packA : packB;
                long panelSize = ofA ? aPanel : bPanel;
                for (int g = 0; g < count; g++)
                    PackSliver(source, width, stride, q0 + g * Panel, depths[g], sliver, pack.AsSpan((int)(g * panelSize + (long)sliver * Width * depths[g])));
            }
            if (parallel && slivers > 1) Parallel.For(0, slivers, Pack);
            else for (int s = 0; s < slivers; s++) Pack(s);
            void Block(int k)
            {
                int i0 = k / columnBlocks * BlockRows, i1 = Math.Min(na, i0 + BlockRows);
                int j0 = k % columnBlocks * BlockColumns, j1 = Math.Min(lowerOnly ? Math.Min(nb, i1) : nb, j0 + BlockColumns);
                fixed (float* pa = packA, pb = packB)
                fixed (double* pc = c)
                {
                    for (int j = j0; j < j1; j += Width)
                        for (int i = i0; i < i1; i += Height)
                        {
                            if (lowerOnly && j > i + Height - 1) continue;
                            int mi = Math.Min(Height, na - i), nj = Math.Min(Width, nb - j);
                            for (int g = 0; g < count; g++)
                            {
                                int kc = depths[g];
                                float* ta = pa + g * aPanel + (long)(i / Width) * Width * kc + i % Width;
                                float* tb = pb + g * bPanel + (long)(j / Width) * Width * kc;
                                Tile(kc, ta, tb, pc + (long)i * ldc + j, ldc, mi, nj);
                            }
                        }
                }
            }
            if (parallel && blocks > 1) Parallel.For(0, blocks, k => Block(blocks - 1 - k));
            else for (int k = 0; k < blocks; k++) Block(k);
        }
    }

    private static float[] Grown(ref float[]? buffer, long length) =>
        buffer is { } b && b.Length >= length ? b : buffer = new float[length];

    /// <summary>
    /// Sliver <paramref name="sliver"/> of rows [r0, r0 + depth): dst[p·Width + v] = x[(sliver·Width + v)·stride + r0 + p], zero
    /// past <paramref name="width"/> values. Eight values by eight rows at a time through an 8×8 transpose in registers: one
    /// value at a time, the copies were a seventh of the products' time on ResNet-50 (3.4 CPU s), most of it where B is
    /// narrow (the crosses with a layer's outputs), so that packing A is as much work as the products.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackSliver(float[] x, int width, int stride, int r0, int depth, int sliver, Span<float> dst)
    {
        int v0 = sliver * Width, here = Math.Min(Width, width - v0);
        if (dst.Length < (long)depth * Width) throw new ArgumentException($"sliver buffer holds {dst.Length} values, {depth} rows need {depth * Width}");
        fixed (float* px = x, pd = dst)
        {
            int v = 0;
            if (Avx.IsSupported)
                for (; v + 8 <= here; v += 8)
                {
                    float* s = px + (long)(v0 + v) * stride + r0;
                    int p = 0;
                    for (; p + 8 <= depth; p += 8) Transpose8(s + p, stride, pd + (long)p * Width + v);
                    for (; p < depth; p++)
                        for (int i = 0; i < 8; i++) pd[(long)p * Width + v + i] = s[(long)i * stride + p];
                }
            for (; v < Width; v++)
            {
                float* d = pd + v;
                if (v < here)
                {
                    float* s = px + (long)(v0 + v) * stride + r0;
                    for (int p = 0; p < depth; p++) d[(long)p * Width] = s[p];
                }
                else
                    for (int p = 0; p < depth; p++) d[(long)p * Width] = 0;
            }
        }
    }

    /// <summary>d[j·Width + i] = s[i·stride + j] for i, j &lt; 8: rows of the source become runs of the sliver.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(float* s, int stride, float* d)
    {
        var r0 = Avx.LoadVector256(s); var r1 = Avx.LoadVector256(s + stride);
        var r2 = Avx.LoadVector256(s + 2L * stride); var r3 = Avx.LoadVector256(s + 3L * stride);
        var r4 = Avx.LoadVector256(s + 4L * stride); var r5 = Avx.LoadVector256(s + 5L * stride);
        var r6 = Avx.LoadVector256(s + 6L * stride); var r7 = Avx.LoadVector256(s + 7L * stride);
        // Pairs, then quads, interleaved within each 128-bit half; then the halves are swapped into place.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(d + Width, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(d + 2 * Width, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(d + 3 * Width, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(d + 4 * Width, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(d + 5 * Width, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(d + 6 * Width, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(d + 7 * Width, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>C[mi × nj] += the tile's float32 sums over kc rows (<see cref="Kernel"/>), widened to float64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(int kc, float* a, float* b, double* c, int ldc, int mi, int nj)
    {
        float* acc = stackalloc float[Height * Width];
        Kernel(kc, a, b, acc);
        FloatTileSums.AddWidened(acc, Width, c, ldc, mi, nj);
    }

    /// <summary>
    /// acc[r·Width + q] = Σ_p a[p·Width + r]·b[p·Width + q] for r &lt; 8, q &lt; 32: sixteen 512-bit sums in registers, stored
    /// once at the end. Its own method with nothing after the loop: where the tile's edge handling followed the loop in
    /// the same method, the JIT (without PGO, as the CLI runs) stored every sum to the stack on each step, 2.5× slower.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel(int kc, float* a, float* b, float* acc)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            a += Width; b += Width;
        }
        c00.Store(acc); c01.Store(acc + 16); c10.Store(acc + 32); c11.Store(acc + 48); c20.Store(acc + 64); c21.Store(acc + 80);
        c30.Store(acc + 96); c31.Store(acc + 112); c40.Store(acc + 128); c41.Store(acc + 144); c50.Store(acc + 160); c51.Store(acc + 176);
        c60.Store(acc + 192); c61.Store(acc + 208); c70.Store(acc + 224); c71.Store(acc + 240);
    }
}
