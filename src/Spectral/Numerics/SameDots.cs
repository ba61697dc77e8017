using System.Numerics;
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
/// Float32 rows go the same way in 16 lanes and blocks of 128. Elsewhere (no AVX-512, fewer than one block) each product
/// is <c>TensorPrimitives.Dot</c> itself.
/// </summary>
public static unsafe class SameDots
{
    private const int Vectors = 8; // vectors per iteration of the aligned loop

    /// <summary>Whether <see cref="Four(ReadOnlySpan{double}, ReadOnlySpan{double}, ReadOnlySpan{double}, ReadOnlySpan{double}, ReadOnlySpan{double}, Span{double})"/>
    /// runs its own kernel for rows of <paramref name="length"/> values.</summary>
    public static bool Blocked(int length) => Blocked<double>(length);

    /// <summary>dots[k] = TensorPrimitives.Dot(x, y_k), k = 0..3, bit for bit; all five rows of x's length.</summary>
    public static void Four(ReadOnlySpan<double> x, ReadOnlySpan<double> y0, ReadOnlySpan<double> y1, ReadOnlySpan<double> y2,
        ReadOnlySpan<double> y3, Span<double> dots) => FourOf(x, y0, y1, y2, y3, dots);

    /// <summary>The float32 version: dots[k] = TensorPrimitives.Dot(x, y_k) bit for bit (16 lanes, blocks of 128).</summary>
    public static void Four(ReadOnlySpan<float> x, ReadOnlySpan<float> y0, ReadOnlySpan<float> y1, ReadOnlySpan<float> y2,
        ReadOnlySpan<float> y3, Span<float> dots) => FourOf(x, y0, y1, y2, y3, dots);

    private static bool Blocked<T>(int length) => Vector512.IsHardwareAccelerated && length >= Vectors * Vector512<T>.Count;

    // One kernel for both widths: the JIT compiles it apart for double (8 lanes, blocks of 64) and float (16, 128).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourOf<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y0, ReadOnlySpan<T> y1, ReadOnlySpan<T> y2, ReadOnlySpan<T> y3, Span<T> dots)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Length;
        if (y0.Length != n || y1.Length != n || y2.Length != n || y3.Length != n)
            throw new ArgumentException($"rows of {y0.Length}, {y1.Length}, {y2.Length}, {y3.Length} values for x of {n}");
        if (dots.Length < 4) throw new ArgumentException($"dots has {dots.Length} places, need 4", nameof(dots));
        if (!Blocked<T>(n))
        {
            dots[0] = TensorPrimitives.Dot(x, y0);
            dots[1] = TensorPrimitives.Dot(x, y1);
            dots[2] = TensorPrimitives.Dot(x, y2);
            dots[3] = TensorPrimitives.Dot(x, y3);
            return;
        }
        int w = Vector512<T>.Count, unrolled = Vectors * w;
        fixed (T* px = x, p0 = y0, p1 = y1, p2 = y2, p3 = y3)
        {
            var s0 = Vector512<T>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
            var xb = Vector512.Load(px);
            var b0 = xb * Vector512.Load(p0); var b1 = xb * Vector512.Load(p1);
            var b2 = xb * Vector512.Load(p2); var b3 = xb * Vector512.Load(p3);
            var xe = Vector512.Load(px + n - w);
            var e0 = xe * Vector512.Load(p0 + n - w); var e1 = xe * Vector512.Load(p1 + n - w);
            var e2 = xe * Vector512.Load(p2 + n - w); var e3 = xe * Vector512.Load(p3 + n - w);

            // More than one block: blocks from the second vector on, then the first vector; otherwise the first vector.
            int at = 0, remainder = n;
            if (n > unrolled)
            {
                at = w;
                remainder -= w;
                while (remainder >= unrolled)
                {
                    for (int v = 0; v < Vectors; v++)
                    {
                        int o = at + v * w;
                        var xv = Vector512.Load(px + o);
                        s0 += xv * Vector512.Load(p0 + o); s1 += xv * Vector512.Load(p1 + o);
                        s2 += xv * Vector512.Load(p2 + o); s3 += xv * Vector512.Load(p3 + o);
                    }
                    at += unrolled;
                    remainder -= unrolled;
                }
            }
            s0 += b0; s1 += b1; s2 += b2; s3 += b3;
            // The full vectors left after `at` (the first one excluded when it was not skipped), in address order.
            int blocks = remainder / w, trailing = remainder % w;
            if (n <= unrolled) blocks--;
            remainder -= trailing;
            for (int b = blocks; b >= 1; b--)
            {
                int o = at + remainder - b * w;
                var xv = Vector512.Load(px + o);
                s0 += xv * Vector512.Load(p0 + o); s1 += xv * Vector512.Load(p1 + o);
                s2 += xv * Vector512.Load(p2 + o); s3 += xv * Vector512.Load(p3 + o);
            }
            // The last vector, masked to its lanes [w − trailing, w): the trailing values no block took.
            var last = Vector512.GreaterThanOrEqual(Vector512<T>.Indices, Vector512.Create(T.CreateTruncating(w - trailing)));
            s0 += Vector512.ConditionalSelect(last, e0, Vector512<T>.Zero);
            s1 += Vector512.ConditionalSelect(last, e1, Vector512<T>.Zero);
            s2 += Vector512.ConditionalSelect(last, e2, Vector512<T>.Zero);
            s3 += Vector512.ConditionalSelect(last, e3, Vector512<T>.Zero);
            dots[0] = Vector512.Sum(s0);
            dots[1] = Vector512.Sum(s1);
            dots[2] = Vector512.Sum(s2);
            dots[3] = Vector512.Sum(s3);
        }
    }
}
