using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// The packed, register-blocked GEMM behind <see cref="Gemm.Multiply(int, int, int, double, ReadOnlySpan{double}, int, bool, ReadOnlySpan{double}, int, bool, Span{double}, int)"/>
/// and its float32 overload: C[m×n] += alpha·op(A)·op(B), row-major everywhere, products summed in T over the whole
/// depth. One code for both widths: a register tile is 6 rows × two 512-bit vectors (4 × two 256-bit vectors without
/// AVX-512, 4×4 scalar without either), so the float tile is twice as wide and the steps are otherwise the same.
/// </summary>
internal static unsafe class PackedGemm<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const int KC = 256;   // depth of one packed panel (A sliver + B sliver stay in L1)
    public const int MC = 96;    // rows of A packed per block (multiple of every MR; ~200 KB of doubles, L2)
    private const int NC = 2048; // columns of B packed per panel (L3)

    private static readonly bool Use512 = Vector512.IsHardwareAccelerated;
    private static readonly bool Use256 = !Use512 && Vector256.IsHardwareAccelerated;
    public static readonly int MR = Use512 ? 6 : 4;
    public static readonly int NR = Use512 ? 2 * Vector512<T>.Count : Use256 ? 2 * Vector256<T>.Count : 4;

    [ThreadStatic] private static T[]? t_packA;
    [ThreadStatic] private static T[]? t_packB;

    /// <summary>C += alpha·op(A)·op(B); op(A) is m×k (A stored m×k, or k×m when transA), op(B) is k×n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, bool transA,
        ReadOnlySpan<T> b, int ldb, bool transB,
        Span<T> c, int ldc)
    {
        if (m <= 0 || n <= 0 || k <= 0) return;
        var packA = t_packA ??= new T[MC * KC];
        var packB = t_packB ??= new T[KC * (NC + NR)];
        fixed (T* pa = a, pb = b, pc = c, wa = packA, wb = packB)
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackA(T* a, int lda, bool trans, int i0, int p0, int mc, int kc, T* dst)
    {
        int mr = MR;
        for (int s = 0; s < mc; s += mr)
        {
            int rowsHere = Math.Min(mr, mc - s);
            T* d = dst + (long)s * kc;
            if (!trans)
            {
                for (int r = 0; r < mr; r++)
                {
                    if (r < rowsHere)
                    {
                        T* src = a + (long)(i0 + s + r) * lda + p0;
                        for (int p = 0; p < kc; p++) d[p * mr + r] = src[p];
                    }
                    else for (int p = 0; p < kc; p++) d[p * mr + r] = T.Zero;
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    T* src = a + (long)(p0 + p) * lda + i0 + s;
                    int r = 0;
                    for (; r < rowsHere; r++) d[p * mr + r] = src[r];
                    for (; r < mr; r++) d[p * mr + r] = T.Zero;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackB(T* b, int ldb, bool trans, int p0, int j0, int kc, int nc, T* dst)
    {
        int nr = NR, half = Vector512<T>.Count;
        for (int s = 0; s < nc; s += nr)
        {
            int colsHere = Math.Min(nr, nc - s);
            T* d = dst + (long)s * kc;
            if (!trans)
            {
                if (Use512 && colsHere == nr)
                {
                    // whole slivers (the rank-2k updates' and Q's B panels): two vector copies per depth step
                    for (int p = 0; p < kc; p++)
                    {
                        T* src = b + (long)(p0 + p) * ldb + j0 + s;
                        Vector512.Load(src).Store(d + p * nr);
                        Vector512.Load(src + half).Store(d + p * nr + half);
                    }
                    continue;
                }
                for (int p = 0; p < kc; p++)
                {
                    T* src = b + (long)(p0 + p) * ldb + j0 + s;
                    int c = 0;
                    for (; c < colsHere; c++) d[p * nr + c] = src[c];
                    for (; c < nr; c++) d[p * nr + c] = T.Zero;
                }
            }
            else
            {
                for (int c = 0; c < nr; c++)
                {
                    if (c < colsHere)
                    {
                        T* src = b + (long)(j0 + s + c) * ldb + p0;
                        for (int p = 0; p < kc; p++) d[p * nr + c] = src[p];
                    }
                    else for (int p = 0; p < kc; p++) d[p * nr + c] = T.Zero;
                }
            }
        }
    }

    /// <summary>C[mc×nc] += alpha·(packed A)(packed B), tile by tile; edge tiles go through a scratch tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Macro(int mc, int nc, int kc, T alpha, T* pa, T* pb, T* c, int ldc)
    {
        int mr = MR, nr = NR;
        T* tmp = stackalloc T[6 * 32];
        for (int j = 0; j < nc; j += nr)
        {
            int nj = Math.Min(nr, nc - j);
            for (int i = 0; i < mc; i += mr)
            {
                int mi = Math.Min(mr, mc - i);
                T* ap = pa + (long)i * kc, bp = pb + (long)j * kc;
                // The next tile's rows of C, into the cache while this one is summed: a rank-96 update of a matrix larger than
                // the cache (Cholesky's trailing update of a 4,000-wide system) otherwise waits on every tile's C from memory,
                // twelve lines in twelve rows. 4000×4000×96, one thread: 19 → 27 GFMA/s. The sums are untouched.
                if (Sse.IsSupported) PrefetchTile(c, ldc, i + mr < mc ? i + mr : 0, i + mr < mc ? j : j + nr, mc, nc);
                if (mi == mr && nj == nr)
                    Kernel(kc, alpha, ap, bp, c + (long)i * ldc + j, ldc);
                else
                {
                    new Span<T>(tmp, mr * nr).Clear();
                    Kernel(kc, alpha, ap, bp, tmp, nr);
                    for (int r = 0; r < mi; r++)
                        for (int q = 0; q < nj; q++)
                            c[(long)(i + r) * ldc + j + q] += tmp[r * nr + q];
                }
            }
        }
    }

    /// <summary>Prefetches the C rows of the tile at (<paramref name="i"/>, <paramref name="j"/>) of an mc×nc block: a 128-byte run per row (two lines).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(T* c, int ldc, int i, int j, int mc, int nc)
    {
        if (j >= nc) return;
        for (int r = i, end = Math.Min(i + MR, mc); r < end; r++)
        {
            byte* line = (byte*)(c + (long)r * ldc + j);
            Sse.Prefetch0(line);
            Sse.Prefetch0(line + 64);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel(int kc, T alpha, T* a, T* b, T* c, int ldc)
    {
        if (Use512) Kernel6(kc, alpha, a, b, c, ldc);
        else if (Use256) Kernel4(kc, alpha, a, b, c, ldc);
        else Kernel4x4(kc, alpha, a, b, c, ldc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma(Vector512<T> x, Vector512<T> y, Vector512<T> z) =>
        typeof(T) == typeof(double)
            ? Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), z.AsDouble()).As<double, T>()
            : Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), z.AsSingle()).As<float, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma(Vector256<T> x, Vector256<T> y, Vector256<T> z) =>
        typeof(T) == typeof(double)
            ? Vector256.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), z.AsDouble()).As<double, T>()
            : Vector256.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), z.AsSingle()).As<float, T>();

    /// <summary>6 rows × two 512-bit vectors (6×16 doubles, 6×32 floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6(int kc, T alpha, T* a, T* b, T* c, int ldc)
    {
        int w = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + w);
            var x = Vector512.Create(a[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
            a += 6; b += 2 * w;
        }
        var al = Vector512.Create(alpha);
        Store(c, c00, c01, al); c += ldc; Store(c, c10, c11, al); c += ldc; Store(c, c20, c21, al); c += ldc;
        Store(c, c30, c31, al); c += ldc; Store(c, c40, c41, al); c += ldc; Store(c, c50, c51, al);

        static void Store(T* r, Vector512<T> v0, Vector512<T> v1, Vector512<T> al)
        {
            Fma(al, v0, Vector512.Load(r)).Store(r);
            Fma(al, v1, Vector512.Load(r + Vector512<T>.Count)).Store(r + Vector512<T>.Count);
        }
    }

    /// <summary>4 rows × two 256-bit vectors (4×8 doubles, 4×16 floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4(int kc, T alpha, T* a, T* b, T* c, int ldc)
    {
        int w = Vector256<T>.Count;
        Vector256<T> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<T> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + w);
            var x = Vector256.Create(a[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            a += 4; b += 2 * w;
        }
        var al = Vector256.Create(alpha);
        Store(c, c00, c01, al); c += ldc; Store(c, c10, c11, al); c += ldc;
        Store(c, c20, c21, al); c += ldc; Store(c, c30, c31, al);

        static void Store(T* r, Vector256<T> v0, Vector256<T> v1, Vector256<T> al)
        {
            Fma(al, v0, Vector256.Load(r)).Store(r);
            Fma(al, v1, Vector256.Load(r + Vector256<T>.Count)).Store(r + Vector256<T>.Count);
        }
    }

    private static void Kernel4x4(int kc, T alpha, T* a, T* b, T* c, int ldc)
    {
        T* acc = stackalloc T[16];
        new Span<T>(acc, 16).Clear();
        for (int p = 0; p < kc; p++, a += 4, b += 4)
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++)
                    acc[r * 4 + q] += a[r] * b[q];
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++)
                c[(long)r * ldc + q] += alpha * acc[r * 4 + q];
    }
}
