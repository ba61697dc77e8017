using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

public sealed class WeightPrepackingTests
{
    [Fact]
    public void Only_a_large_Gemm_or_MatMul_weight_turns_prepacking_off()
    {
        // x [N, 8, 4, 4] → Conv 8→16 (4,608 bytes of weights) → Flatten → Gemm 256→8 (8,192 bytes) → MatMul 8→4 (128 bytes).
        var b = new GraphBuilder(seed: 3);
        string x = b.Input("x", -1, 8, 4, 4);
        string h = b.Node("Flatten", [b.Conv(x, 8, 16)]);
        h = b.Node("Gemm", [h, b.Init("fc1", [8, 256]), b.Init("fc1b", [8])], ("transB", 1L));
        b.Output(b.Node("MatMul", [h, b.Init("fc2", [8, 4])]), -1, 4);
        using var model = b.Model();
        var graph = model.Graph;
        var nodes = graph.Nodes.ToList();
        Assert.False(WeightPrepacking.Worthwhile(graph, nodes, limit: 8192));
        Assert.True(WeightPrepacking.Worthwhile(graph, nodes, limit: 8193));
        // Without the Gemm, the conv's 4,608 bytes do not count (a conv's prepacking pays off); the MatMul's 128 do.
        Assert.True(WeightPrepacking.Worthwhile(graph, nodes.Where(n => n.OpType != "Gemm"), limit: 129));
        Assert.False(WeightPrepacking.Worthwhile(graph, nodes.Where(n => n.OpType != "Gemm"), limit: 128));
    }
}
