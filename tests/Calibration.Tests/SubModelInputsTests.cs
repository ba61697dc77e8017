using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>
/// A reconstruction pass's sub-model declares only the model inputs its nodes read, so a pass that starts from cached
/// values is fed no samples at all (and reads none from the calibration file).
/// </summary>
public sealed class SubModelInputsTests
{
    // a [2,3,4,4] → Conv → ya → Relu → ra;  b [2,3,4,4] → Conv → yb.
    private static OnnxModel Model()
    {
        var m = new GraphBuilder(seed: 3);
        return m.WithInput("a", -1, 3, 4, 4).WithInput("b", -1, 3, 4, 4)
            .WithInitializer("wa", [2, 3, 1, 1], m.Normal(6))
            .WithInitializer("wb", [2, 3, 1, 1], m.Normal(6))
            .WithNode("Conv", "conva", ["a", "wa"], ["ya"])
            .WithNode("Relu", "relua", ["ya"], ["ra"])
            .WithNode("Conv", "convb", ["b", "wb"], ["yb"])
            .WithOutput("ra").WithOutput("yb")
            .Model();
    }

    private static NamedTensor Sample(string name, int seed) =>
        new(name, TensorElementType.Float, [2, 3, 4, 4], new GraphBuilder(seed: seed).Normal(2 * 3 * 16));

    [Fact]
    public void Only_the_inputs_the_nodes_read_are_declared_and_fed()
    {
        var model = Model();
        var a = Sample("a", 11);
        var expected = ActivationProbe.Run(new ModelRunner(ActivationProbe.WithExtraOutputs(model, ["ya"]), optimize: false), [a, Sample("b", 12)]);

        var fromA = SubModel.Build(model, ["ya"], onlyReadInputs: true);
        Assert.Equal(["a"], fromA.ModelInputs);
        using (var runner = new ModelRunner(fromA.Bytes, optimize: false))
        {
            Assert.Equal(["a"], runner.Inputs.Keys);
            var ya = new float[2 * 2 * 16];
            runner.RunInto([], [new FloatBuffer("a", (float[])a.Data, [2, 3, 4, 4])], [new FloatBuffer("ya", ya, [2, 2, 4, 4])]);
            Assert.Equal(expected["ya"].AsFloats(), ya);
        }

        // From a cached value: no model input at all.
        var fromCut = SubModel.Build(model, ["ra"], new Dictionary<string, long[]> { ["ya"] = [1, 2, 4, 4] }, onlyReadInputs: true);
        Assert.Empty(fromCut.ModelInputs);
        using (var runner = new ModelRunner(fromCut.Bytes, optimize: false))
        {
            Assert.Equal(["ya"], runner.Inputs.Keys);
            var ra = new float[2 * 2 * 16];
            runner.RunInto([], [new FloatBuffer("ya", expected["ya"].AsFloats(), [2, 2, 4, 4])], [new FloatBuffer("ra", ra, [2, 2, 4, 4])]);
            Assert.Equal(expected["ya"].AsFloats().Select(v => Math.Max(v, 0f)), ra);
        }

        // Without the option every runtime input stays declared, as the other passes feed them all.
        var all = SubModel.Build(model, ["ya"]);
        Assert.Equal(["a", "b"], all.ModelInputs.Order());
        using var plain = new ModelRunner(all.Bytes, optimize: false);
        Assert.Equal(["a", "b"], plain.Inputs.Keys.Order());
    }
}
