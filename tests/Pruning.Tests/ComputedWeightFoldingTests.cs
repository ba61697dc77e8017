using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Pruning.Tests;

/// <summary>
/// ResNet-18 with weight normalisation, exported with <c>do_constant_folding=False</c>, computes each layer's weight as
/// g·v/‖v‖ (ReduceL2, Div, Mul of initializers) and was refused for lack of prunable groups; such tensors are now
/// computed once on ONNX Runtime and stored, so its layers are pruned.
/// </summary>
public sealed class ComputedWeightFoldingTests
{
    /// <summary>x → MatMul(g·v/‖v‖) → Relu → MatMul(w·s) → y: both weights computed, the first by weight normalisation.</summary>
    private static GraphBuilder WeightNormalised()
    {
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", 2, 8);
        string v = b.Init("v", [8, 16]);
        string norm = b.Node("ReduceL2", [v], ("axes", new long[] { 0 }), ("keepdims", 1L));
        string w1 = b.Node("Mul", [b.Node("Div", [v, norm]), b.Init("g", [1, 16], b.Uniform(16, 0.5, 2))]);
        string h = b.Relu(b.Node("MatMul", [x, w1]));
        b.Output(b.Node("MatMul", [h, b.Node("Mul", [b.Init("w2", [16, 4]), b.Init("s", [1])])]), 2, 4);
        return b;
    }

    [Fact]
    public void Computed_weights_are_stored_and_the_graph_computes_what_it_did()
    {
        var b = WeightNormalised();
        using var model = b.Model();
        using var before = b.Model();
        var (folded, example) = ComputedWeightFolding.Fold(model);

        Assert.Equal(2, folded);
        Assert.Contains(example, model.Graph.Nodes.Where(n => n.OpType == "MatMul").Select(n => n.Id));
        Assert.Equal(["MatMul", "Relu", "MatMul"], model.Graph.Nodes.Select(n => n.OpType));
        Assert.All(model.Graph.Nodes.Where(n => n.OpType == "MatMul"), n => Assert.NotNull(model.Graph.Initializer(n.Input(1))));
        Assert.DoesNotContain("v", model.Graph.Initializers.Keys);
        var x = new NamedTensor("x", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [2, 8], b.Normal(16));
        using var a = new ModelRunner(before);
        using var c = new ModelRunner(model);
        Assert.True(a.Run([x])[0].SameAs(c.Run([x])[0]));
        Assert.Equal((0, null), ComputedWeightFolding.Fold(model));
    }

    /// <summary>inspect and analyze show the groups a prune finds.</summary>
    [Fact]
    public void The_analysis_finds_the_group_between_computed_weights()
    {
        using var model = WeightNormalised().Model();
        var analysis = ModelAnalysis.Run(model, []);
        Assert.Equal(16, Assert.Single(analysis.Groups.Prunable).Width);
    }

    [Fact]
    public void Layers_reading_computed_weights_are_pruned_and_the_summary_says_why_they_could_be()
    {
        using var model = WeightNormalised().Model();

        using var result = Pruner.Prune(model, new PruneOptions { Ratio = 0.3, Time = false });

        Assert.StartsWith("2 tensor(s) computed from stored weights alone (e.g. read by ", result.Summary.Notes[0]);
        Assert.EndsWith("computed once on ONNX Runtime and stored (an export without constant folding)", result.Summary.Notes[0]);
        Assert.InRange(result.Summary.AchievedReduction, 0.2, 0.4);
        var first = result.Model.Graph.Initializer(result.Model.Graph.Nodes.First(n => n.OpType == "MatMul").Input(1))!;
        Assert.Equal(8, first.Dims[0]);
        Assert.InRange(first.Dims[1], 8, 15);
        // The original handed in keeps its nodes: only the library's copy is folded.
        Assert.Contains(model.Graph.Nodes, n => n.OpType == "ReduceL2");
    }

    /// <summary>
    /// What the channel rules read through stays as it is: a float16 weight behind a Cast (stored half, written back half),
    /// and integer tensors computed from constants (a Reshape's shape); a random op is never folded.
    /// </summary>
    [Fact]
    public void Half_weights_behind_casts_integer_constants_and_random_ops_are_left_alone()
    {
        var b = new GraphBuilder(seed: 6);
        string x = b.Input("x", 2, 8);
        string wh = b.Init("wh", [8, 16], dataType: DataType.Float16);
        string half = b.Node("Cast", [wh], ("to", (long)DataType.Float));
        string h = b.Relu(b.Node("MatMul", [x, half]));
        string shape = b.Node("Cast", [b.ConstantNode("shape", [2], [2, 16])], ("to", (long)DataType.Int64));
        string r = b.Node("Reshape", [h, shape]);
        b.Output(b.Node("MatMul", [r, b.Node("RandomUniformLike", [b.Init("w2", [16, 4])])]), 2, 4);
        using var model = b.Model();
        int nodes = model.Graph.Nodes.Count;

        Assert.Equal((0, null), ComputedWeightFolding.Fold(model));
        Assert.Equal(nodes, model.Graph.Nodes.Count);
        Assert.Equal(DataType.Float16, model.Graph.Initializer(wh)!.DataType);
    }
}
