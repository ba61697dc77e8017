namespace OnnxSlim.Spectral.Tests;

public sealed class ChannelRefitTests
{
    [Fact]
    public void A_dropped_channel_that_is_a_mix_of_kept_ones_is_rebuilt_from_them()
    {
        // x2 = 2·x0 − x1 on every observation: dropping channel 2, the kept channels carry it with weights (2, −1).
        var random = new Random(3);
        int n = 400;
        var g = new double[9];
        for (int s = 0; s < n; s++)
        {
            double a = random.NextDouble() - 0.5, b = random.NextDouble() - 0.5;
            double[] x = [a, b, 2 * a - b];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) g[i * 3 + j] += x[i] * x[j] / n;
        }
        var reader = new ConsumerStatistics(g, new FilterMatrix(3, 1, [1.0, 1.0, 1.0]));
        var x2 = ChannelRefit.Transfer(reader, [0, 1], out var kept, out var dropped);
        Assert.Equal([0, 1], kept);
        Assert.Equal([2], dropped);
        // The damping (1 % of the mean moment) shrinks the solution a little.
        Assert.Equal(2, x2[0], 1);
        Assert.Equal(-1, x2[1], 1);
    }

    [Fact]
    public void Patch_features_go_with_their_channel()
    {
        var g = new double[36];
        for (int i = 0; i < 6; i++) g[i * 6 + i] = 1;
        var reader = new ConsumerStatistics(g, new FilterMatrix(3, 2, new double[6]), Taps: 2);
        var x = ChannelRefit.Transfer(reader, [1], out var kept, out var dropped);
        Assert.Equal([2, 3], kept);
        Assert.Equal([0, 1, 4, 5], dropped);
        Assert.All(x, v => Assert.Equal(0, v, 12)); // uncorrelated features rebuild nothing
        var e = Assert.Throws<ArgumentException>(() => ChannelRefit.Transfer(reader, [1, 3], out _, out _));
        Assert.Contains("3", e.Message);
    }
}
