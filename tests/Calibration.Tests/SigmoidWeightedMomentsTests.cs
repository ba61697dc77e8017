using OnnxSlim.Calibration;
using OnnxSlim.Spectral;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

public sealed class SigmoidWeightedMomentsTests
{
    // x [8,3,4,4] → Conv 1×1 (3→1, w = [0, 1, 1]) → c → Add 0 → z → Sigmoid → p (the model's output).
    // Positions 0–7 are background: channel 1 = −20 + large noise, which only shifts saturated logits (channel 0 = 1
    // there, unread). Positions 8–15 are edges: channel 2 small noise around z = 0.
    private static (GraphIO.OnnxModel Model, float[] X) Model()
    {
        const int n = 8, area = 16;
        var rng = new Random(5);
        double Normal() => StandardNormal.Next(rng);
        var x = new float[n * 3 * area];
        for (int s = 0; s < n; s++)
            for (int p = 0; p < area; p++)
            {
                bool background = p < 8;
                x[(s * 3 + 0) * area + p] = background ? 1 : 0;
                x[(s * 3 + 1) * area + p] = background ? (float)(-20 + 2 * Normal()) : 0;
                x[(s * 3 + 2) * area + p] = background ? 0 : (float)(0.5 * Normal());
            }
        var model = new GraphBuilder(seed: 1).WithInput("x", -1, 3, 4, 4)
            .WithInitializer("w", [1, 3, 1, 1], [0, 1, 1])
            .WithInitializer("k", [1], [0])
            .WithNode("Conv", "conv", ["x", "w"], ["c"])
            .WithNode("Add", "add", ["c", "k"], ["z"])
            .WithNode("Sigmoid", "sigmoid", ["z"], ["p"])
            .WithOutput("p")
            .Model();
        return (model, x);
    }

    [Fact]
    public void A_layer_before_a_sigmoid_output_is_weighted_by_its_slope_and_keeps_the_channel_that_moves_the_edges()
    {
        var (model, x) = Model();
        Assert.Equal("z", CalibratedRanking.SigmoidLogits(model.Graph, model.Graph.Producer("c")!));
        var input = ModelOps.Floats("x", [8, 3, 4, 4], x);
        ChannelMoments.Request plain = new("x"), weighted = new("x", SigmoidLogits: "z");
        var moments = ChannelMoments.Compute(model, [plain, weighted], [input], maxObservations: 1000, batchBytes: 1);

        // The weighted moments are Σ σ'(z)·x·xᵀ over every (sample, position), over their count.
        var expected = new double[9];
        for (int s = 0; s < 8; s++)
            for (int p = 0; p < 16; p++)
            {
                double sz = 1 / (1 + Math.Exp(-(x[(s * 3 + 1) * 16 + p] + x[(s * 3 + 2) * 16 + p])));
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) expected[i * 3 + j] += sz * (1 - sz) * x[(s * 3 + i) * 16 + p] * x[(s * 3 + j) * 16 + p] / 128;
            }
        for (int i = 0; i < 9; i++) Assert.Equal(expected[i], moments[weighted][i], 6);

        var weights = new FilterMatrix(3, 1, [0, 1, 1]);
        var byEnergy = ChannelElimination.Run([new ConsumerStatistics(moments[plain], weights)]);
        var bySlope = ChannelElimination.Run([new ConsumerStatistics(moments[weighted], weights)]);
        // Raw energy: the background's channel 1 outweighs the edges' channel 2, which goes first.
        Assert.True(Array.IndexOf(byEnergy.RemovalOrder, 2) < Array.IndexOf(byEnergy.RemovalOrder, 1));
        // Weighted by the slope: channel 2 is the one kept, the saturated background's channels go.
        Assert.Equal([2], bySlope.Keep(1));
    }

    [Fact]
    public void A_layer_whose_output_is_not_squashed_into_a_model_output_is_not_weighted()
    {
        var model = new GraphBuilder(seed: 1).WithInput("x", -1, 3, 4, 4)
            .WithInitializer("w", [1, 3, 1, 1], [0, 1, 1])
            .WithNode("Conv", "conv", ["x", "w"], ["c"])
            .WithNode("Sigmoid", "sigmoid", ["c"], ["p"])
            .WithNode("Relu", "relu", ["p"], ["q"])
            .WithOutput("q")
            .Model();
        Assert.Null(CalibratedRanking.SigmoidLogits(model.Graph, model.Graph.Producer("c")!));
    }
}
