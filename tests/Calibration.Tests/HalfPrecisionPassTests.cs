using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>The calibration passes on a float16 graph: values cross the sub-model's boundary as float32, bit for bit.</summary>
public sealed class HalfPrecisionPassTests
{
    // x [5,3,4,4] float16 → Relu → r → Conv(1×1, 3→2) → c, everything float16.
    private static (OnnxModel Model, NamedTensor X) Model()
    {
        var m = new GraphBuilder(seed: 7, elementType: DataType.Float16);
        var x = new NamedTensor("x", TensorElementType.Float16, [5, 3, 4, 4], NamedTensor.FromFloats(m.Normal(5 * 3 * 16), TensorElementType.Float16));
        var model = m.WithInput("x", -1, 3, 4, 4)
            .WithInitializer("w", [2, 3, 1, 1], m.Normal(6))
            .WithNode("Relu", "relu", ["x"], ["r"])
            .WithNode("Conv", "conv", ["r", "w"], ["c"])
            .WithOutput("c")
            .Model();
        return (model, x);
    }

    private static float[] Widened(NamedTensor t) => Assert.IsType<Half[]>(t.Data).Select(v => (float)v).ToArray();

    [Fact]
    public void A_cut_float16_value_is_fed_and_returned_as_float32_through_casts()
    {
        var (model, x) = Model();
        var full = ActivationProbe.Run(new ModelRunner(ActivationProbe.WithExtraOutputs(model, ["r"]), optimize: false), [x]);
        float[] r = Widened(full["r"]), c = Widened(full["c"]);

        var types = new Dictionary<string, TensorElementType> { ["r"] = TensorElementType.Float16, ["c"] = TensorElementType.Float16 };
        var sub = SubModel.Build(model, ["c"], new Dictionary<string, long[]> { ["r"] = [1, 3, 4, 4] }, types);
        Assert.Equal(["r"], sub.CutInputs);
        Assert.NotEqual("r", sub.Float32Name("r"));
        Assert.NotEqual("c", sub.Float32Name("c"));
        using var runner = new ModelRunner(sub.Bytes, optimize: false);
        var output = new float[c.Length];
        runner.RunInto([x], [new FloatBuffer(sub.Float32Name("r"), r, [5, 3, 4, 4])], [new FloatBuffer(sub.Float32Name("c"), output, [5, 2, 4, 4])]);
        // ORT's CPU provider may hand the float16 Conv's output back unrounded (it drops our Cast pair); rounded to
        // float16 it is bit for bit what the whole graph computed.
        Assert.All(output.Zip(c), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-3 * Math.Abs(p.Second) + 1e-6, $"{p.First} vs {p.Second}"));
        SubModel.RoundToOwnType(output, TensorElementType.Float16);
        Assert.Equal(c, output);

        // Without float16 types nothing is converted (float32 models get the sub-model they always got).
        var plain = SubModel.Build(model, ["c"], new Dictionary<string, long[]> { ["r"] = [1, 3, 4, 4] });
        Assert.Empty(plain.Float32Names);
    }

    [Fact]
    public void Moments_of_float16_values_match_the_direct_sums_of_their_widened_values()
    {
        var (model, x) = Model();
        var full = ActivationProbe.Run(new ModelRunner(ActivationProbe.WithExtraOutputs(model, ["r"]), optimize: false), [x]);
        ChannelMoments.Request r = new("r"), c = new("c"), input = new("x");
        // One sample per run: batches stitched together, the float16 input read widened as a value too.
        var moments = ChannelMoments.Compute(model, [r, c, input], [x], maxObservations: 1000, batchBytes: 1);
        void Check(ChannelMoments.Request request, float[] values, int channels)
        {
            var expected = ChannelMomentsTests.Direct(values, 5, channels, 16);
            // Products summed in float32 over each flush of rows (as the reconstruction's sums), then in float64: a few float32
            // roundings of the largest terms, far below anything a float16 value could move.
            for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], moments[request][i], 1e-6 * (1 + Math.Abs(expected[i])));
        }
        Check(r, Widened(full["r"]), 3);
        Check(c, Widened(full["c"]), 2);
        Check(input, Widened(x), 3);
    }
}
