using System.Numerics.Tensors;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

public sealed class SymmetricInverseTests
{
    /// <summary>The step-at-a-time Gauss–Jordan elimination the blocked one must reproduce bit for bit.</summary>
    private static double[] StepAtATime(double[] a, int n)
    {
        var pivotRow = new double[n];
        for (int k = 0; k < n; k++)
        {
            double p = a[k * n + k];
            var rowK = new Span<double>(a, k * n, n);
            rowK[k] = 1;
            TensorPrimitives.Divide(rowK, p, rowK);
            rowK.CopyTo(pivotRow);
            for (int i = 0; i < n; i++)
            {
                if (i == k) continue;
                var rowI = new Span<double>(a, i * n, n);
                double f = rowI[k];
                if (f == 0) continue;
                rowI[k] = 0;
                TensorPrimitives.MultiplyAdd(pivotRow, -f, rowI, rowI);
            }
        }
        return a;
    }

    /// <summary>Damped moments of random rows; with <paramref name="blocks"/>, zero outside diagonal blocks (rows whose f is 0).</summary>
    private static double[] Spd(int n, int seed, int blocks)
    {
        var rng = new Synthetic(seed);
        int samples = n + 3;
        var x = new double[samples * n];
        for (int i = 0; i < x.Length; i++) x[i] = rng.Gauss();
        var g = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                if (blocks > 1 && i * blocks / n != j * blocks / n) continue;
                double s = 0;
                for (int r = 0; r < samples; r++) s += x[r * n + i] * x[r * n + j];
                g[i * n + j] = s / samples + (i == j ? 0.01 : 0);
            }
        return g;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 1)]
    [InlineData(31, 1)]
    [InlineData(32, 1)]
    [InlineData(33, 1)]
    [InlineData(70, 3)]
    [InlineData(131, 1)]
    [InlineData(300, 1)]
    [InlineData(300, 5)]
    public void Blocked_inverse_has_the_bits_of_the_step_at_a_time_one(int n, int blocks)
    {
        var a = Spd(n, 100 + n, blocks);
        var expected = StepAtATime((double[])a.Clone(), n);
        var actual = SymmetricInverse.Invert(a, n);
        for (int i = 0; i < n * n; i++)
            Assert.True(BitConverter.DoubleToInt64Bits(expected[i]) == BitConverter.DoubleToInt64Bits(actual[i]),
                $"[{i / n}, {i % n}]: {actual[i]:R} vs {expected[i]:R}");
    }

    /// <summary>
    /// Dead channels (a zero row and column but the damped diagonal) are steps no other row takes, and rows of a quad
    /// skip different steps: the four still go together (−0 for a skipped step), with the same bits.
    /// </summary>
    [Theory]
    [InlineData(200, 7)]
    [InlineData(131, 3)]
    public void Dead_channels_and_steps_some_rows_skip_keep_the_bits(int n, int every)
    {
        var a = Spd(n, 40 + n, 1);
        for (int d = 0; d < n; d += every)
            for (int i = 0; i < n; i++)
                if (i != d) a[d * n + i] = a[i * n + d] = 0;
        // Some entries exactly zero off any pattern, so that rows of one quad skip different steps.
        for (int i = 0; i + 5 < n; i += 11) a[i * n + i + 5] = a[(i + 5) * n + i] = 0;
        var expected = StepAtATime((double[])a.Clone(), n);
        var actual = SymmetricInverse.Invert(a, n);
        for (int i = 0; i < n * n; i++)
            Assert.True(BitConverter.DoubleToInt64Bits(expected[i]) == BitConverter.DoubleToInt64Bits(actual[i]),
                $"[{i / n}, {i % n}]: {actual[i]:R} vs {expected[i]:R}");
    }

    [Fact]
    public void Inverse_times_the_matrix_is_the_identity()
    {
        const int n = 90;
        var a = Spd(n, 7, 1);
        var inverse = SymmetricInverse.Invert((double[])a.Clone(), n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int k = 0; k < n; k++) s += a[i * n + k] * inverse[k * n + j];
                Assert.Equal(i == j ? 1 : 0, s, 1e-6);
            }
    }

    [Fact]
    public void A_matrix_that_is_not_positive_definite_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => SymmetricInverse.Invert([1, 2, 2, 1], 2));
        Assert.Contains("pivot 1", e.Message);
    }
}
