using OnnxSlim.TestSupport;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>What the rule table says about layers (weight axes, MACs) and per-channel affine chains.</summary>
public sealed class LayerRuleTests
{
    [Fact]
    public void Weight_axes_follow_transB_and_the_transposed_conv_layout()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 8, 4, 4);
        var conv = b.Conv(x, 8, 6, group: 2);
        var convT = b.Node("ConvTranspose", [conv, b.Init("wt", [6, 5, 2, 2])], ("group", 3L), ("strides", new long[] { 2, 2 }));
        var flat = b.Node("Flatten", [b.Node("GlobalAveragePool", [convT])]);
        var gemm = b.Node("Gemm", [flat, b.Init("fc", [7, 15])], ("transB", 1L));
        b.Output(b.Node("MatMul", [gemm, b.Init("proj", [7, 2])]), 1, 2);
        using var model = b.Model();
        LayerWeight Of(string op) => Layers.Weight(model.Graph, model.Graph.Nodes.Single(n => n.OpType == op))!;

        Assert.Equal(new LayerWeight(0, 1, 2, 6, 8, 2), Of("Conv"));
        Assert.Equal(new LayerWeight(1, 0, 3, 15, 6, 2), Of("ConvTranspose"));
        Assert.Equal(new LayerWeight(0, 1, 1, 7, 15, 2), Of("Gemm"));
        Assert.Equal(new LayerWeight(1, 0, 1, 2, 7, -1), Of("MatMul"));
        Assert.Equal(4, Of("Conv").InputsPerGroup);
        Assert.False(Layers.IsLayer(model.Graph.Nodes.Single(n => n.OpType == "Flatten")));
        Assert.Null(Layers.Weight(model.Graph.Nodes.Single(n => n.OpType == "Gemm"), [7, 15, 1]));
    }

    [Fact]
    public void Macs_are_the_rules_formulas()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 8, 4, 4);
        var conv = b.Conv(x, 8, 6, group: 2, stride: 2);
        b.Output(b.Node("ConvTranspose", [conv, b.Init("wt", [6, 5, 2, 2])], ("group", 3L), ("strides", new long[] { 2, 2 })), 1, 15, 4, 4);
        using var model = b.Model();
        var shapes = Runtime.ShapeProbe.Run(model, ModelCost.RequiredValues(model.Graph), []);
        var cost = ModelCost.Compute(model.Graph, shapes);
        // Conv: 6 outputs · 2×2 map · (8/2 inputs · 3×3 taps). ConvTranspose: 6 inputs · 2×2 map · (5 outputs · 2×2 taps).
        Assert.Equal([6L * 4 * 4 * 9, 6L * 4 * 5 * 4], cost.Nodes.Select(n => n.Macs));
    }

    [Fact]
    public void Affine_chain_folds_mul_batchnorm_and_reversed_sub_and_stops_at_an_activation()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 3, 4, 4);
        var conv = b.Conv(x, 3, 4, k: 1);
        var c = new float[] { 2, -1, 0.5f, 3 };
        var mul = b.Node("Mul", [conv, b.Init("c", [4, 1, 1], c)]);
        var bn = b.BatchNorm(mul, 4);
        var sub = b.Node("Sub", [b.Init("s", [1], [1f]), bn]);
        b.Output(b.Relu(sub), 1, 4, 4, 4);
        using var model = b.Model();
        var g = model.Graph;
        var convNode = g.Nodes.Single(n => n.OpType == "Conv");
        double[]? Values(Node node, int input)
        {
            var w = g.ResolveWeight(node.Input(input))!.Tensor.ToFloats();
            return [.. Enumerable.Range(0, 4).Select(j => (double)w[w.Length == 1 ? 0 : j])];
        }
        var (scale, offset, steps) = AffineChain.Fold(g, convNode.Outputs[0], 4, Values, maxSteps: 8);
        Assert.Equal([AffineKind.Multiply, AffineKind.Normalize, AffineKind.SubtractFrom], steps.Select(s => s.Kind));
        var bnNode = g.Nodes.Single(n => n.OpType == "BatchNormalization");
        var (gamma, beta, mean, variance) = (Values(bnNode, 1)!, Values(bnNode, 2)!, Values(bnNode, 3)!, Values(bnNode, 4)!);
        for (int j = 0; j < 4; j++)
        {
            double s = gamma[j] / Math.Sqrt(variance[j] + 1e-5f);
            Assert.Equal(-c[j] * s, scale[j], 12);
            Assert.Equal(1 - (beta[j] - s * mean[j]), offset[j], 12);
        }
    }
}
