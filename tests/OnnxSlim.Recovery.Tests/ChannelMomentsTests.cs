using OnnxSlim.Runtime.Recovery;

namespace OnnxSlim.Recovery.Tests;

public sealed class ChannelMomentsTests
{
    // x [5,3,4,4] → Relu → r; x → Conv(1×1, 3→2) → c: two values with different channel counts.
    private static (GraphIO.OnnxModel Model, float[] X) Model()
    {
        var m = new TinyModel(7);
        float[] x = m.Normal(5 * 3 * 16);
        var model = m.Input("x", -1, 3, 4, 4)
            .Initializer("w", [2, 3, 1, 1], m.Normal(6))
            .Node("Relu", "relu", ["x"], ["r"])
            .Node("Conv", "conv", ["r", "w"], ["c"])
            .Output("c")
            .Build();
        return (model, x);
    }

    /// <summary>E[v·vᵀ] over every (sample, position) of channel axis 1, in float64.</summary>
    private static double[] Direct(float[] values, int samples, int channels, int positions)
    {
        var g = new double[channels * channels];
        for (int s = 0; s < samples; s++)
            for (int p = 0; p < positions; p++)
                for (int i = 0; i < channels; i++)
                    for (int j = 0; j < channels; j++)
                        g[i * channels + j] += (double)values[(s * channels + i) * positions + p] * values[(s * channels + j) * positions + p];
        return [.. g.Select(v => v / (samples * positions))];
    }

    [Fact]
    public void Moments_over_every_position_match_the_direct_sums()
    {
        var (model, x) = Model();
        var input = TinyModel.Tensor4("x", [5, 3, 4, 4], x);
        // A tiny batch budget forces one sample per run, so batches are stitched together.
        var moments = ChannelMoments.Compute(model, ["r", "c"], [input], maxObservations: 1000, batchBytes: 1);
        var relu = x.Select(v => Math.Max(v, 0f)).ToArray();
        var expected = Direct(relu, 5, 3, 16);
        Assert.Equal(9, moments["r"].Length);
        for (int i = 0; i < 9; i++) Assert.Equal(expected[i], moments["r"][i], 5);
        var conv = TinyModel.Run(model, input);
        var expectedConv = Direct(conv, 5, 2, 16);
        for (int i = 0; i < 4; i++) Assert.Equal(expectedConv[i], moments["c"][i], 4);
    }

    [Fact]
    public void Sampled_moments_are_seeded_and_symmetric()
    {
        var (model, x) = Model();
        var input = TinyModel.Tensor4("x", [5, 3, 4, 4], x);
        var a = ChannelMoments.Compute(model, ["r"], [input], maxObservations: 40, seed: 1)["r"];
        var b = ChannelMoments.Compute(model, ["r"], [input], maxObservations: 40, seed: 1)["r"];
        var c = ChannelMoments.Compute(model, ["r"], [input], maxObservations: 40, seed: 2)["r"];
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) Assert.Equal(a[i * 3 + j], a[j * 3 + i]);
        Assert.Throws<ArgumentException>(() => ChannelMoments.Compute(model, ["r"], [input], maxObservations: 0));
    }
}
