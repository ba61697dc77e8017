using MathNet.Numerics.LinearAlgebra;

namespace OnnxSlim.Spectral.Tests;

public sealed class ChannelEliminationTests
{
    /// <summary>Moments of <paramref name="samples"/> random activations mixing <paramref name="n"/> channels (correlated, full rank).</summary>
    private static double[] Moments(Synthetic rng, int n, int samples, Action<double[]>? edit = null)
    {
        var mix = Matrix<double>.Build.Dense(n, n, (_, _) => rng.Gauss());
        var g = new double[n * n];
        var x = new double[n];
        for (int s = 0; s < samples; s++)
        {
            var z = Vector<double>.Build.Dense(n, _ => rng.Gauss());
            (mix * z).AsArray().CopyTo(x, 0);
            edit?.Invoke(x);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) g[i * n + j] += x[i] * x[j] / samples;
        }
        return g;
    }

    /// <summary>
    /// OBS over the features R of the removed channels, with damped moments G_d: the re-fitted readers'
    /// error is tr(K_RR · ([G_d⁻¹]_RR)⁻¹), relative to tr(K·G), averaged over readers. K is over features
    /// (channel, tap); a channel's weight row is ordered (output, tap).
    /// </summary>
    private static double ClosedForm(IReadOnlyList<ConsumerStatistics> readers, int[] removedChannels)
    {
        double sum = 0;
        foreach (var r in readers)
        {
            int t = r.Taps, n = r.Width * t, outputs = r.Weights.Cols / t;
            var g = Matrix<double>.Build.Dense(n, n, (i, j) => r.Moments[i * n + j]);
            var w = Matrix<double>.Build.Dense(n, outputs, (f, o) => r.Weights.Data[(f / t) * r.Weights.Cols + o * t + f % t]);
            var k = w * w.Transpose();
            double energy = (k.PointwiseMultiply(g)).Enumerate().Sum();
            var damped = g + Matrix<double>.Build.DenseIdentity(n) * (ChannelElimination.Damping * g.Trace() / n);
            var inv = damped.Inverse();
            var removed = removedChannels.SelectMany(c => Enumerable.Range(c * t, t)).ToArray();
            if (removed.Length == 0) continue;
            var invRR = Matrix<double>.Build.Dense(removed.Length, removed.Length, (a, b) => inv[removed[a], removed[b]]);
            var kRR = Matrix<double>.Build.Dense(removed.Length, removed.Length, (a, b) => k[removed[a], removed[b]]);
            sum += (kRR * invRR.Inverse()).Trace() / energy;
        }
        return Math.Min(sum / readers.Count, 1);
    }

    private static List<ConsumerStatistics> Readers(int seed, int n, int taps = 1)
    {
        var rng = new Synthetic(seed);
        return [new ConsumerStatistics(Moments(rng, n * taps, 300), rng.Gaussian(n, 12 * taps), taps),
            new ConsumerStatistics(Moments(rng, n * taps, 300), rng.Gaussian(n, 5 * taps), taps)];
    }

    [Theory]
    [InlineData(1, 6, 1)]
    [InlineData(2, 9, 1)]
    [InlineData(6, 5, 4)]
    [InlineData(7, 7, 9)]
    public void Error_curve_is_the_exact_refit_error_of_each_greedy_prefix(int seed, int n, int taps)
    {
        var readers = Readers(seed, n, taps);
        var e = ChannelElimination.Run(readers);
        Assert.Equal(n, e.RemovalOrder.Distinct().Count());
        Assert.Equal(0, e.RelativeError[n]);
        for (int kept = n - 1; kept >= 0; kept--)
        {
            var removed = e.RemovalOrder[..(n - kept)];
            Assert.Equal(ClosedForm(readers, removed), e.RelativeError[kept], 9);
            Assert.True(e.RelativeError[kept] >= e.RelativeError[kept + 1]);
        }
        Assert.True(e.RelativeError[0] > 0.95, $"removing every channel should lose (nearly) all output energy, got {e.RelativeError[0]}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Each_step_removes_the_channel_whose_removal_costs_least(int taps)
    {
        const int n = 8;
        var readers = Readers(3, n, taps);
        var e = ChannelElimination.Run(readers);
        for (int step = 0; step < n - 1; step++)
        {
            var before = e.RemovalOrder[..step];
            double chosen = ClosedForm(readers, [.. before, e.RemovalOrder[step]]);
            foreach (int other in Enumerable.Range(0, n).Except(before))
                Assert.True(chosen <= ClosedForm(readers, [.. before, other]) + 1e-12, $"step {step}: channel {other} was cheaper than {e.RemovalOrder[step]}");
        }
    }

    [Theory]
    [InlineData(11, 40, 1, 3)]
    [InlineData(12, 12, 3, 2)]
    [InlineData(13, 70, 1, 64)]
    public void Folding_the_recorded_updates_changes_nothing_but_rounding(int seed, int n, int taps, int foldEvery)
    {
        var readers = Readers(seed, n, taps);
        var lazy = ChannelElimination.Run(readers, foldEvery: n + 1);
        var folded = ChannelElimination.Run(readers, foldEvery);
        Assert.Equal(lazy.RemovalOrder, folded.RemovalOrder);
        for (int k = 0; k <= n; k++) Assert.Equal(lazy.RelativeError[k], folded.RelativeError[k], 10);
        foreach (int kept in new[] { n / 2, n / 4 })
            Assert.Equal(ClosedForm(readers, folded.RemovalOrder[..(n - kept)]), folded.RelativeError[kept], 8);
    }

    [Fact]
    public void Dead_and_duplicated_channels_go_first_and_cost_little()
    {
        const int n = 7;
        var rng = new Synthetic(4);
        // Channel 2 never fires (a dead ReLU); channel 5 is 3 × channel 1, so a re-fit replaces it exactly.
        var moments = Moments(rng, n, 400, x => { x[2] = 0; x[5] = 3 * x[1]; });
        var e = ChannelElimination.Run([new ConsumerStatistics(moments, rng.Gaussian(n, 10))]);
        Assert.Equal(2, e.RemovalOrder[0]);
        Assert.Contains(e.RemovalOrder[1], new[] { 1, 5 });
        Assert.True(e.RelativeError[n - 2] < 0.02, $"error after removing the dead and the duplicate channel: {e.RelativeError[n - 2]}");
        Assert.Equal(e.RemovalOrder[^3..].Order(), e.Keep(3));
    }

    [Fact]
    public void Bad_inputs_are_refused()
    {
        var rng = new Synthetic(5);
        Assert.Throws<ArgumentException>(() => ChannelElimination.Run([]));
        Assert.Throws<ArgumentException>(() => ChannelElimination.Run([new ConsumerStatistics(Moments(rng, 3, 10), rng.Gaussian(4, 2))]));
        var e = ChannelElimination.Run([new ConsumerStatistics(Moments(rng, 3, 10), rng.Gaussian(3, 2))]);
        Assert.Throws<ArgumentException>(() => e.Keep(0));
        Assert.Throws<ArgumentException>(() => e.Keep(4));
        // Taps must divide a channel's weights, and the moments must cover every (channel, tap).
        Assert.Throws<ArgumentException>(() => ChannelElimination.Run([new ConsumerStatistics(Moments(rng, 6, 10), rng.Gaussian(3, 5), 2)]));
        Assert.Throws<ArgumentException>(() => ChannelElimination.Run([new ConsumerStatistics(Moments(rng, 3, 10), rng.Gaussian(3, 4), 2)]));
    }
}
