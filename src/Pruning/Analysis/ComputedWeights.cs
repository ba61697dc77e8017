using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;

namespace OnnxSlim.Pruning;

/// <summary>
/// Layers whose weight is still computed from stored tensors by nodes after the folds (<see cref="StoredTransposes"/>,
/// <see cref="ComputedWeightFolding"/>): through a random op, a dequantisation, or what ONNX Runtime could not compute
/// alone. They are not layers to the channel rules,
/// so nothing they read can be pruned, and a refusal that only named the first frozen group's reason (ConvNeXt: a
/// LayerNormalization) hid why.
/// </summary>
internal static class ComputedWeights
{
    /// <summary>The layers (Conv, ConvTranspose, Gemm, MatMul: <see cref="Layers.IsLayer"/>) whose input 1 is computed from initializers and constants only.</summary>
    public static IReadOnlyList<Node> Find(Graph graph) =>
        [.. graph.Nodes.Where(n => Layers.IsLayer(n) && n.Inputs.Count > 1
            && graph.ResolveWeight(n.Input(1)) is null && graph.IsConstant(n.Input(1), MaxDepth))];

    private const int MaxDepth = 8;

    /// <summary>A sentence for a refusal, or empty when no layer reads a computed weight.</summary>
    public static string Hint(Graph graph)
    {
        var nodes = Find(graph);
        if (nodes.Count == 0) return "";
        string via = graph.Producer(nodes[0].Input(1))?.OpType ?? "?";
        return $"; {nodes.Count} Conv/Gemm/MatMul node(s) read a weight computed from stored tensors (e.g. '{nodes[0].Id}' through {via}),"
            + " which cannot be pruned: export the model with constant folding (torch.onnx.export(..., do_constant_folding=True))";
    }
}
