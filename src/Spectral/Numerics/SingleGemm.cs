using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// <see cref="Gemm.Multiply"/> in float32: C[m×n] += alpha·op(A)·op(B), row-major, products summed in float32 over
/// the whole depth. Why: forming Q for GEM on a group whose Gram is built from float32 products
/// (<see cref="GramMatrix.UsesSingle"/>: VGG-16's classifier groups) is ~10¹¹ multiply-adds, and a float32 GEMM does
/// twice as many per cycle as a float64 one; such a Gram's own rounding is already that of float32.
/// </summary>
internal static unsafe class SingleGemm
{
    private const int KC = 256;   // depth of one packed panel
    private const int MC = 96;    // rows of A packed per block (multiple of every MR)
    private const int NC = 2048;  // columns of B packed per panel

    private static readonly bool Use512 = Vector512.IsHardwareAccelerated;
    private static readonly bool Use256 = !Use512 && Vector256.IsHardwareAccelerated;
    private static readonly int MR = Use512 ? 6 : 4;
    private static readonly int NR = Use512 ? 32 : Use256 ? 16 : 4;

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>C += alpha·op(A)·op(B); op(A) is m×k (A stored m×k, or k×m when transA), op(B) is k×n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, bool transA,
        ReadOnlySpan<float> b, int ldb, bool transB,
        Span<float> c, int ldc)
    {
        if (m <= 0 || n <= 0 || k <= 0) return;
        var packA = t_packA ??= new float[MC * KC];
        var packB = t_packB ??= new float[KC * (NC + 32)];
        fixed (float* pa = a, pb = b, pc = c, wa = packA, wb = packB)
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
    private static void PackA(float* a, int lda, bool trans, int i0, int p0, int mc, int kc, float* dst)
    {
        int mr = MR;
        for (int s = 0; s < mc; s += mr)
        {
            int rowsHere = Math.Min(mr, mc - s);
            float* d = dst + (long)s * kc;
            if (!trans)
            {
                for (int r = 0; r < mr; r++)
                {
                    if (r < rowsHere)
                    {
                        float* src = a + (long)(i0 + s + r) * lda + p0;
                        for (int p = 0; p < kc; p++) d[p * mr + r] = src[p];
                    }
                    else for (int p = 0; p < kc; p++) d[p * mr + r] = 0;
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + s;
                    int r = 0;
                    for (; r < rowsHere; r++) d[p * mr + r] = src[r];
                    for (; r < mr; r++) d[p * mr + r] = 0;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(float* b, int ldb, bool trans, int p0, int j0, int kc, int nc, float* dst)
    {
        int nr = NR;
        for (int s = 0; s < nc; s += nr)
        {
            int colsHere = Math.Min(nr, nc - s);
            float* d = dst + (long)s * kc;
            if (!trans)
            {
                if (colsHere == 32 && nr == 32)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = b + (long)(p0 + p) * ldb + j0 + s;
                        Vector512.Load(src).Store(d + p * 32);
                        Vector512.Load(src + 16).Store(d + p * 32 + 16);
                    }
                    continue;
                }
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(p0 + p) * ldb + j0 + s;
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
                        float* src = b + (long)(j0 + s + c) * ldb + p0;
                        for (int p = 0; p < kc; p++) d[p * nr + c] = src[p];
                    }
                    else for (int p = 0; p < kc; p++) d[p * nr + c] = 0;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Macro(int mc, int nc, int kc, float alpha, float* pa, float* pb, float* c, int ldc)
    {
        int mr = MR, nr = NR;
        float* tmp = stackalloc float[6 * 32];
        for (int j = 0; j < nc; j += nr)
        {
            int nj = Math.Min(nr, nc - j);
            for (int i = 0; i < mc; i += mr)
            {
                int mi = Math.Min(mr, mc - i);
                float* ap = pa + (long)i * kc, bp = pb + (long)j * kc;
                if (mi == mr && nj == nr)
                    Kernel(kc, alpha, ap, bp, c + (long)i * ldc + j, ldc);
                else
                {
                    new Span<float>(tmp, mr * nr).Clear();
                    Kernel(kc, alpha, ap, bp, tmp, nr);
                    for (int r = 0; r < mi; r++)
                        for (int q = 0; q < nj; q++)
                            c[(long)(i + r) * ldc + j + q] += tmp[r * nr + q];
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel(int kc, float alpha, float* a, float* b, float* c, int ldc)
    {
        if (Use512) Kernel6x32(kc, alpha, a, b, c, ldc);
        else if (Use256) Kernel4x16(kc, alpha, a, b, c, ldc);
        else Kernel4x4(kc, alpha, a, b, c, ldc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x32(int kc, float alpha, float* a, float* b, float* c, int ldc)
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
            a += 6; b += 32;
        }
        var al = Vector512.Create(alpha);
        Store(c, c00, c01, al); c += ldc; Store(c, c10, c11, al); c += ldc; Store(c, c20, c21, al); c += ldc;
        Store(c, c30, c31, al); c += ldc; Store(c, c40, c41, al); c += ldc; Store(c, c50, c51, al);

        static void Store(float* r, Vector512<float> v0, Vector512<float> v1, Vector512<float> al)
        {
            Vector512.FusedMultiplyAdd(al, v0, Vector512.Load(r)).Store(r);
            Vector512.FusedMultiplyAdd(al, v1, Vector512.Load(r + 16)).Store(r + 16);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x16(int kc, float alpha, float* a, float* b, float* c, int ldc)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            a += 4; b += 16;
        }
        var al = Vector256.Create(alpha);
        Store(c, c00, c01, al); c += ldc; Store(c, c10, c11, al); c += ldc;
        Store(c, c20, c21, al); c += ldc; Store(c, c30, c31, al);

        static void Store(float* r, Vector256<float> v0, Vector256<float> v1, Vector256<float> al)
        {
            Vector256.FusedMultiplyAdd(al, v0, Vector256.Load(r)).Store(r);
            Vector256.FusedMultiplyAdd(al, v1, Vector256.Load(r + 8)).Store(r + 8);
        }
    }

    private static void Kernel4x4(int kc, float alpha, float* a, float* b, float* c, int ldc)
    {
        float* acc = stackalloc float[16];
        for (int p = 0; p < kc; p++, a += 4, b += 4)
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++)
                    acc[r * 4 + q] += a[r] * b[q];
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++)
                c[(long)r * ldc + q] += alpha * acc[r * 4 + q];
    }
}
