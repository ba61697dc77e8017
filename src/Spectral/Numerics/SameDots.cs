using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Four inner products of one row with four others at once, each the same bits as
/// <c>TensorPrimitives.Dot(x, y)</c> (System.Numerics.Tensors 9.0, AVX-512): per product one chain of
/// 8-lane additions of rounded lane products (no fused multiply-add), in the order that routine takes them — the
/// blocks of 64 from the ninth value on (when there are more than 64), then the first 8 values, then the blocks of 8 up
/// to the last full one, then the last 8 values masked to the ones not yet added — and one <c>Vector512.Sum</c>.
/// Why: the data-free fold of a wide group takes ~10⁹ such products (Faster R-CNN's 2048-wide group: ~1,500 removed
/// rows × ~570 kept rows × 2,304 values); one at a time, each is one serial chain of additions, bound by the adder's
/// latency. Four chains side by side share the loads of x and hide it, and the fold's fits stay the same bits.
/// Elsewhere (no AVX-512, fewer than 64 values) each product is <c>TensorPrimitives.Dot</c> itself.
/// </summary>
public static unsafe class SameDots
{
    private const int W = 8;           // doubles per Vector512
    private const int Unrolled = 8 * W; // values per iteration of the aligned loop

    /// <summary>Whether <see cref="Four"/> runs its own kernel for rows of <paramref name="length"/> values.</summary>
    public static bool Blocked(int length) => Vector512.IsHardwareAccelerated && length >= Unrolled;

    /// <summary>dots[k] = TensorPrimitives.Dot(x, y_k), k = 0..3, bit for bit; all five rows of x's length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Four(ReadOnlySpan<double> x, ReadOnlySpan<double> y0, ReadOnlySpan<double> y1, ReadOnlySpan<double> y2,
        ReadOnlySpan<double> y3, Span<double> dots)
    {
        int n = x.Length;
        if (y0.Length != n || y1.Length != n || y2.Length != n || y3.Length != n)
            throw new ArgumentException($"rows of {y0.Length}, {y1.Length}, {y2.Length}, {y3.Length} values for x of {n}");
        if (dots.Length < 4) throw new ArgumentException($"dots has {dots.Length} places, need 4", nameof(dots));
        if (!Blocked(n))
        {
            dots[0] = TensorPrimitives.Dot(x, y0);
            dots[1] = TensorPrimitives.Dot(x, y1);
            dots[2] = TensorPrimitives.Dot(x, y2);
            dots[3] = TensorPrimitives.Dot(x, y3);
            return;
        }
        fixed (double* px = x, p0 = y0, p1 = y1, p2 = y2, p3 = y3)
        {
            var s0 = Vector512<double>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
            var xb = Vector512.Load(px);
            var b0 = xb * Vector512.Load(p0); var b1 = xb * Vector512.Load(p1);
            var b2 = xb * Vector512.Load(p2); var b3 = xb * Vector512.Load(p3);
            var xe = Vector512.Load(px + n - W);
            var e0 = xe * Vector512.Load(p0 + n - W); var e1 = xe * Vector512.Load(p1 + n - W);
            var e2 = xe * Vector512.Load(p2 + n - W); var e3 = xe * Vector512.Load(p3 + n - W);

            // More than 64 values: blocks of 64 from the ninth value on, then the first vector; otherwise the first vector.
            int at = 0, remainder = n;
            if (n > Unrolled)
            {
                at = W;
                remainder -= W;
                while (remainder >= Unrolled)
                {
                    for (int v = 0; v < 8; v++)
                    {
                        int o = at + v * W;
                        var xv = Vector512.Load(px + o);
                        s0 += xv * Vector512.Load(p0 + o); s1 += xv * Vector512.Load(p1 + o);
                        s2 += xv * Vector512.Load(p2 + o); s3 += xv * Vector512.Load(p3 + o);
                    }
                    at += Unrolled;
                    remainder -= Unrolled;
                }
            }
            s0 += b0; s1 += b1; s2 += b2; s3 += b3;
            // The full vectors left after `at` (the first one excluded when it was not skipped), in address order.
            int blocks = remainder / W, trailing = remainder % W;
            if (n <= Unrolled) blocks--;
            remainder -= trailing;
            for (int b = blocks; b >= 1; b--)
            {
                int o = at + remainder - b * W;
                var xv = Vector512.Load(px + o);
                s0 += xv * Vector512.Load(p0 + o); s1 += xv * Vector512.Load(p1 + o);
                s2 += xv * Vector512.Load(p2 + o); s3 += xv * Vector512.Load(p3 + o);
            }
            // The last 8 values, masked to the trailing ones no block took.
            var last = LastLanes(trailing);
            s0 += Vector512.ConditionalSelect(last, e0, Vector512<double>.Zero);
            s1 += Vector512.ConditionalSelect(last, e1, Vector512<double>.Zero);
            s2 += Vector512.ConditionalSelect(last, e2, Vector512<double>.Zero);
            s3 += Vector512.ConditionalSelect(last, e3, Vector512<double>.Zero);
            dots[0] = Vector512.Sum(s0);
            dots[1] = Vector512.Sum(s1);
            dots[2] = Vector512.Sum(s2);
            dots[3] = Vector512.Sum(s3);
        }
    }

    /// <summary>Whether <see cref="Four(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/> runs its own kernel for rows of <paramref name="length"/> values.</summary>
    public static bool BlockedSingle(int length) => Vector512.IsHardwareAccelerated && length >= 2 * Unrolled;

    /// <summary>The float32 version: dots[k] = TensorPrimitives.Dot(x, y_k) bit for bit (16 lanes, blocks of 128).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Four(ReadOnlySpan<float> x, ReadOnlySpan<float> y0, ReadOnlySpan<float> y1, ReadOnlySpan<float> y2,
        ReadOnlySpan<float> y3, Span<float> dots)
    {
        const int WS = 2 * W, UnrolledS = 8 * WS;
        int n = x.Length;
        if (y0.Length != n || y1.Length != n || y2.Length != n || y3.Length != n)
            throw new ArgumentException($"rows of {y0.Length}, {y1.Length}, {y2.Length}, {y3.Length} values for x of {n}");
        if (dots.Length < 4) throw new ArgumentException($"dots has {dots.Length} places, need 4", nameof(dots));
        if (!BlockedSingle(n))
        {
            dots[0] = TensorPrimitives.Dot(x, y0);
            dots[1] = TensorPrimitives.Dot(x, y1);
            dots[2] = TensorPrimitives.Dot(x, y2);
            dots[3] = TensorPrimitives.Dot(x, y3);
            return;
        }
        fixed (float* px = x, p0 = y0, p1 = y1, p2 = y2, p3 = y3)
        {
            var s0 = Vector512<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
            var xb = Vector512.Load(px);
            var b0 = xb * Vector512.Load(p0); var b1 = xb * Vector512.Load(p1);
            var b2 = xb * Vector512.Load(p2); var b3 = xb * Vector512.Load(p3);
            var xe = Vector512.Load(px + n - WS);
            var e0 = xe * Vector512.Load(p0 + n - WS); var e1 = xe * Vector512.Load(p1 + n - WS);
            var e2 = xe * Vector512.Load(p2 + n - WS); var e3 = xe * Vector512.Load(p3 + n - WS);
            int at = 0, remainder = n;
            if (n > UnrolledS)
            {
                at = WS;
                remainder -= WS;
                while (remainder >= UnrolledS)
                {
                    for (int v = 0; v < 8; v++)
                    {
                        int o = at + v * WS;
                        var xv = Vector512.Load(px + o);
                        s0 += xv * Vector512.Load(p0 + o); s1 += xv * Vector512.Load(p1 + o);
                        s2 += xv * Vector512.Load(p2 + o); s3 += xv * Vector512.Load(p3 + o);
                    }
                    at += UnrolledS;
                    remainder -= UnrolledS;
                }
            }
            s0 += b0; s1 += b1; s2 += b2; s3 += b3;
            int blocks = remainder / WS, trailing = remainder % WS;
            if (n <= UnrolledS) blocks--;
            remainder -= trailing;
            for (int b = blocks; b >= 1; b--)
            {
                int o = at + remainder - b * WS;
                var xv = Vector512.Load(px + o);
                s0 += xv * Vector512.Load(p0 + o); s1 += xv * Vector512.Load(p1 + o);
                s2 += xv * Vector512.Load(p2 + o); s3 += xv * Vector512.Load(p3 + o);
            }
            var lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            var last = Vector512.GreaterThanOrEqual(lanes, Vector512.Create(WS - trailing)).AsSingle();
            s0 += Vector512.ConditionalSelect(last, e0, Vector512<float>.Zero);
            s1 += Vector512.ConditionalSelect(last, e1, Vector512<float>.Zero);
            s2 += Vector512.ConditionalSelect(last, e2, Vector512<float>.Zero);
            s3 += Vector512.ConditionalSelect(last, e3, Vector512<float>.Zero);
            dots[0] = Vector512.Sum(s0);
            dots[1] = Vector512.Sum(s1);
            dots[2] = Vector512.Sum(s2);
            dots[3] = Vector512.Sum(s3);
        }
    }

    // Lanes [W − count, W) set; none for 0.
    private static Vector512<double> LastLanes(int count)
    {
        var lanes = Vector512.Create(0L, 1, 2, 3, 4, 5, 6, 7);
        return Vector512.GreaterThanOrEqual(lanes, Vector512.Create((long)(W - count))).AsDouble();
    }
}
