using System.Numerics.Tensors;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

/// <summary>Four inner products at once are TensorPrimitives.Dot's bits, whatever the length and the rows' alignment.</summary>
public class SameDotsTests
{
    [Fact]
    public void Four_products_are_the_bits_of_one_dot_each_at_every_length_and_offset()
    {
        var rng = new Random(7);
        // Values of very different magnitudes, so that any other order of additions would round differently.
        var data = new double[8 * 700];
        for (int i = 0; i < data.Length; i++) data[i] = (rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-6, 7));
        var dots = new double[4];
        int blocked = 0, differ = 0;
        foreach (int n in Enumerable.Range(1, 300).Concat([511, 512, 513, 640, 2304]))
            for (int shift = 0; shift < 9; shift++)
            {
                // x and the y rows at unrelated offsets (alignments)
                var x = data.AsSpan(shift, n);
                int[] at = [700 + 3 * shift, 1400 + 5 * shift + 1, 2100 + 7 * shift + 2, 2800 + shift + 5];
                SameDots.Four(x, data.AsSpan(at[0], n), data.AsSpan(at[1], n), data.AsSpan(at[2], n), data.AsSpan(at[3], n), dots);
                for (int k = 0; k < 4; k++)
                {
                    double expected = TensorPrimitives.Dot(x, data.AsSpan(at[k], n));
                    Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(dots[k]),
                        $"n={n} shift={shift} k={k}: {dots[k]:R} vs Dot {expected:R}");
                    // and not trivially: a plain left-to-right sum differs somewhere
                    double plain = 0;
                    for (int c = 0; c < n; c++) plain += x[c] * data[at[k] + c];
                    if (plain != expected) differ++;
                }
                if (SameDots.Blocked(n)) blocked++;
            }
        Assert.True(blocked > 0 || !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated);
        Assert.True(differ > 100, $"only {differ} cases where the order of additions mattered");
    }

    [Fact]
    public void Four_float32_products_are_the_bits_of_one_dot_each_at_every_length_and_offset()
    {
        var rng = new Random(8);
        var data = new float[8 * 1400];
        for (int i = 0; i < data.Length; i++) data[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-4, 5)));
        var dots = new float[4];
        int differ = 0;
        foreach (int n in Enumerable.Range(1, 600).Concat([1023, 1024, 1025, 3072, 4096]))
            for (int shift = 0; shift < 17; shift += n > 600 ? 4 : 1)
            {
                int[] at = [1400 + 3 * shift, 2 * 1400 + 5 * shift + 1, 3 * 1400 + 7 * shift + 2, 4 * 1400 + shift + 5];
                if (n > 1300) at = [5000 + shift, 5000 + 2 * shift + 1, 5000 + 3 * shift + 2, 5000 + 4 * shift + 3];
                var x = data.AsSpan(shift, n);
                SameDots.Four(x, data.AsSpan(at[0], n), data.AsSpan(at[1], n), data.AsSpan(at[2], n), data.AsSpan(at[3], n), dots);
                for (int k = 0; k < 4; k++)
                {
                    float expected = TensorPrimitives.Dot(x, data.AsSpan(at[k], n));
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(dots[k]),
                        $"n={n} shift={shift} k={k}: {dots[k]:R} vs Dot {expected:R}");
                    // the stored vectors are the first argument of the dots WhitenedRemovals replaces: the same bits
                    Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(TensorPrimitives.Dot(data.AsSpan(at[k], n), x)));
                    float plain = 0;
                    for (int c = 0; c < n; c++) plain += x[c] * data[at[k] + c];
                    if (plain != expected) differ++;
                }
            }
        Assert.True(differ > 100, $"only {differ} cases where the order of additions mattered");
    }

    [Fact]
    public void Four_updates_in_one_pass_are_the_bits_of_four_multiply_adds()
    {
        var rng = new Random(9);
        foreach (int n in new[] { 1, 15, 16, 17, 100, 1023, 3072, 4096 })
        {
            var v = Enumerable.Range(0, 5).Select(_ => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-3, 4)))).ToArray()).ToArray();
            float[] l = [0.37123f, -1.9e-3f, 12.5f, -0.777f];
            var expected = (float[])v[0].Clone();
            for (int k = 0; k < 4; k++) TensorPrimitives.MultiplyAdd(v[k + 1], -l[k], expected, expected);
            var w = (float[])v[0].Clone();
            WhitenedRemovals.SubtractFour(w, v[1], v[2], v[3], v[4], l);
            for (int i = 0; i < n; i++) Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(w[i]), $"n={n} [{i}]: {w[i]:R} vs {expected[i]:R}");
            // and fusing the multiply-adds would differ: the order and rounding are what is checked
            if (n >= 1023)
            {
                var fused = (float[])v[0].Clone();
                for (int k = 0; k < 4; k++) for (int i = 0; i < n; i++) fused[i] = MathF.FusedMultiplyAdd(v[k + 1][i], -l[k], fused[i]);
                Assert.NotEqual(expected, fused);
            }
        }
    }

    [Fact]
    public void Rows_of_another_length_are_refused()
    {
        var a = new double[100];
        var ex = Assert.Throws<ArgumentException>(() => SameDots.Four(a, a, a, a.AsSpan(0, 99), a, new double[4]));
        Assert.Contains("99", ex.Message);
    }
}
