using OnnxSlim.TestSupport;

namespace OnnxSlim.Pruning.Tests;

/// <summary>
/// ConvNeXt exported with <c>do_constant_folding=False</c> reads its Linear weights through Transpose nodes and was
/// refused for lack of prunable groups; the Transposes are now folded first, so its layers are pruned.
/// </summary>
public sealed class StoredTransposeTests
{
    private static GraphBuilder TwoLinearLayers()
    {
        var b = new GraphBuilder(seed: 4);
        string x = b.Input("x", 2, 8);
        string h = b.Relu(b.Node("MatMul", [x, b.Node("Transpose", [b.Init("w1", [16, 8])], ("perm", new long[] { 1, 0 }))]));
        b.Output(b.Node("MatMul", [h, b.Node("Transpose", [b.Init("w2", [4, 16])], ("perm", new long[] { 1, 0 }))]), 2, 4);
        return b;
    }

    /// <summary>inspect and analyze show the groups a prune finds.</summary>
    [Fact]
    public void The_analysis_finds_the_group_between_transposed_weights()
    {
        using var model = TwoLinearLayers().Model();
        var analysis = ModelAnalysis.Run(model, []);
        Assert.Equal(16, Assert.Single(analysis.Groups.Prunable).Width);
    }

    [Fact]
    public void Layers_reading_a_transposed_stored_weight_are_pruned_and_the_summary_says_why_they_could_be()
    {
        using var model = TwoLinearLayers().Model();

        using var result = Pruner.Prune(model, new PruneOptions { Ratio = 0.3, Time = false });

        Assert.Equal("2 Transpose node(s) of stored weights folded into the weights their layers read (an export without constant folding)",
            result.Summary.Notes[0]);
        Assert.DoesNotContain(result.Model.Graph.Nodes, n => n.OpType == "Transpose");
        Assert.InRange(result.Summary.AchievedReduction, 0.2, 0.4);
        var first = result.Model.Graph.Initializer(result.Model.Graph.Nodes.First(n => n.OpType == "MatMul").Input(1))!;
        Assert.Equal(8, first.Dims[0]);
        Assert.InRange(first.Dims[1], 8, 15);
        // The original handed in keeps its Transposes: only the library's copy is folded.
        Assert.Equal(2, model.Graph.Nodes.Count(n => n.OpType == "Transpose"));
    }
}
