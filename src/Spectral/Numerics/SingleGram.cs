using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Gram of rows, C = A·Aᵀ, with float32 products summed in float32 over one depth panel of <see cref="KC"/> columns
/// and the panels summed in float64. Why: a group as wide as VGG-16's first classifier layer (4096 rows of 25,088)
/// is 2·10¹¹ multiply-adds, and float32 lanes do twice as many per instruction; the rounding stays near float32's
/// (≈1e−7 relative per value, ≈√256·6e−8 per panel sum), far below what the spectrum's use reads (σ/σ₁ to ~1e−3;
/// <see cref="FilterSpectrum"/> reports σ below √(n·ε)·σ₁ as 0 anyway). Rows come from an <see cref="IRowSource"/>
/// one panel at a time, so nothing as large as the matrix is stored. Needs 256- or 512-bit vectors
/// (<see cref="Available"/>); the result does not depend on how many threads run it.
/// </summary>
internal static unsafe class SingleGram
{
    private const int KC = 256, MC = 96, MR = 6;
    private static readonly bool Use512 = Vector512.IsHardwareAccelerated;
    private static readonly int NR = Use512 ? 32 : 16;

    private const int Panels = 4; // depth panels packed before each pass over C

    [ThreadStatic] private static double[]? t_panel;

    public static bool Available => Vector512.IsHardwareAccelerated || Vector256.IsHardwareAccelerated;

    /// <summary>
    /// C[rows×rows] = A·Aᵀ of the rows <paramref name="source"/> reads. Up to <see cref="Panels"/> depth panels are
    /// packed, then each block row of C takes them in order (the same float64 additions as one panel at a time). Why:
    /// C (rows² doubles, 134 MB for 4096 rows) is read and written once per pass, and for VGG-16's first classifier
    /// group (98 panels) that traffic, not the products, was a fifth of the Gram's time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GramOfRows(IRowSource source, int rows, int cols, Span<double> c, bool parallel)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!Available) throw new PlatformNotSupportedException("float32 Gram needs 256- or 512-bit vectors");
        if (c.Length < (long)rows * rows) throw new ArgumentException($"output too small: {c.Length} < {rows * rows}");
        c[..(rows * rows)].Clear();
        int nr = NR;
        int aSlivers = (rows + MR - 1) / MR, bSlivers = (rows + nr - 1) / nr;
        int group = Math.Min(Panels, (cols + KC - 1) / KC);
        long aStride = (long)aSlivers * MR * KC, bStride = (long)bSlivers * nr * KC; // one panel's packs
        var panel = Grown(ref t_panel, rows * KC);
        var packA = new float[aStride * group];
        var packB = new float[bStride * group];
        int blocks = (rows + MC - 1) / MC;
        bool mayPar = parallel && blocks > 1;
        var kcs = new int[group];
        fixed (double* pp = panel, pc = c)
        fixed (float* wa = packA, wb = packB)
        {
            var pan = (IntPtr)pp; var cp = (IntPtr)pc; var wap = (IntPtr)wa; var wbp = (IntPtr)wb;
            for (int q0 = 0; q0 < cols; q0 += group * KC)
            {
                int count = Math.Min(group, (cols - q0 + KC - 1) / KC);
                for (int g = 0; g < count; g++)
                {
                    int p0c = q0 + g * KC, kc = Math.Min(KC, cols - p0c), gg = g;
                    kcs[g] = kc;
                    void Fill(int part, int parts)
                    {
                        for (int i = rows * part / parts, end = rows * (part + 1) / parts; i < end; i++)
                            source.Read(i, p0c, new Span<double>((double*)pan + (long)i * kc, kc));
                    }
                    void Pack(int part, int parts)
                    {
                        float* a0 = (float*)wap + gg * aStride, b0 = (float*)wbp + gg * bStride;
                        for (int s = aSlivers * part / parts, end = aSlivers * (part + 1) / parts; s < end; s++)
                            PackSliver((double*)pan, kc, s * MR, MR, Math.Min(MR, rows - s * MR), a0 + (long)s * MR * kc);
                        for (int s = bSlivers * part / parts, end = bSlivers * (part + 1) / parts; s < end; s++)
                            PackSliver((double*)pan, kc, s * nr, nr, Math.Min(nr, rows - s * nr), b0 + (long)s * nr * kc);
                    }
                    if (mayPar && IdleCores.Any)
                    {
                        Parallel.For(0, 4, k => Fill(k, 4));
                        Parallel.For(0, 4, k => Pack(k, 4));
                    }
                    else
                    {
                        Fill(0, 1);
                        Pack(0, 1);
                    }
                }
                void Block(int bi)
                {
                    int i0 = bi * MC, mc = Math.Min(MC, rows - i0);
                    int ncol = i0 + mc; // columns 0..ncol−1 cover the block's part on and below the diagonal
                    for (int j = 0; j < ncol; j += nr)
                        for (int i = 0; i < mc; i += MR)
                            for (int g = 0; g < count; g++)
                                Tile(kcs[g], (float*)wap + g * aStride + (long)(i0 + i) * kcs[g], (float*)wbp + g * bStride + (long)j * kcs[g],
                                    (double*)cp + (long)(i0 + i) * rows + j, rows, Math.Min(MR, mc - i), Math.Min(nr, ncol - j));
                }
                if (mayPar && IdleCores.Any) Parallel.For(0, blocks, i => Block(blocks - 1 - i)); // largest block rows first
                else for (int i = 0; i < blocks; i++) Block(i);
            }
            for (int i = 0; i < rows; i++)
                for (int j = i + 1; j < rows; j++)
                    pc[(long)i * rows + j] = pc[(long)j * rows + i];
        }
    }

    private static T[] Grown<T>(ref T[]? buffer, int length) => buffer is { } b && b.Length >= length ? b : buffer = new T[length];

    /// <summary>Rows r0.. of the panel (row length kc) as a sliver of width w: dst[p·w + r] = (float)panel[(r0 + r)·kc + p], zero-padded.</summary>
    private static void PackSliver(double* panel, int kc, int r0, int w, int count, float* dst)
    {
        for (int r = 0; r < w; r++)
        {
            if (r < count)
            {
                double* src = panel + (long)(r0 + r) * kc;
                for (int p = 0; p < kc; p++) dst[p * w + r] = (float)src[p];
            }
            else for (int p = 0; p < kc; p++) dst[p * w + r] = 0;
        }
    }

    /// <summary>C[mi×nj] += the float32 tile A-sliver·B-sliverᵀ over kc, widened to float64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(int kc, float* a, float* b, double* c, int ldc, int mi, int nj)
    {
        float* acc = stackalloc float[MR * 32];
        if (Use512) Kernel512(kc, a, b, acc); else Kernel256(kc, a, b, acc);
        FloatTileSums.AddWidened(acc, NR, c, ldc, mi, nj);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512(int kc, float* a, float* b, float* acc)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            a += MR; b += 32;
        }
        c00.Store(acc); c01.Store(acc + 16); c10.Store(acc + 32); c11.Store(acc + 48); c20.Store(acc + 64); c21.Store(acc + 80);
        c30.Store(acc + 96); c31.Store(acc + 112); c40.Store(acc + 128); c41.Store(acc + 144); c50.Store(acc + 160); c51.Store(acc + 176);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(int kc, float* a, float* b, float* acc)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            a += MR; b += 16;
        }
        c00.Store(acc); c01.Store(acc + 8); c10.Store(acc + 16); c11.Store(acc + 24); c20.Store(acc + 32); c21.Store(acc + 40);
        c30.Store(acc + 48); c31.Store(acc + 56); c40.Store(acc + 64); c41.Store(acc + 72); c50.Store(acc + 80); c51.Store(acc + 88);
    }
}
