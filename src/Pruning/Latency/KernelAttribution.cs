using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// Which node of our graph each profiled kernel runs. A kernel ONNX Runtime kept has the node's name. A conv it
/// moved to the NCHWc layout is named after the value it writes plus "_nchwc": the conv's own output, or the output
/// of what it fused in (an activation, a BatchNorm, the residual Add); there we walk back to the conv that has no
/// kernel of its own. Layout reorders it inserted, and fusions of unknown name, map to no node.
/// </summary>
internal static class KernelAttribution
{
    private const int MaxFusedHops = 4;

    public static Node?[] Map(Graph graph, IReadOnlyList<KernelTime> kernels)
    {
        var byName = new Dictionary<string, Node>(StringComparer.Ordinal);
        var order = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var n = graph.Nodes[i];
            order[n] = i;
            if (n.Name.Length > 0) byName.TryAdd(n.Name, n);
        }
        var result = new Node?[kernels.Count];
        var claimed = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var fused = new List<(int Kernel, Node Last)>();
        for (int k = 0; k < kernels.Count; k++)
        {
            string name = kernels[k].Name;
            if (KernelProfile.IsReorder(kernels[k].OpType)) continue;
            if (byName.TryGetValue(name, out var node))
            {
                result[k] = node;
                if (IsLayer(graph, node)) claimed.Add(node);
            }
            else if (name.EndsWith("_nchwc", StringComparison.Ordinal) && graph.Producer(name[..^"_nchwc".Length]) is { } producer)
            {
                if (IsLayer(graph, producer))
                {
                    result[k] = producer;
                    claimed.Add(producer);
                }
                else fused.Add((k, producer));
            }
        }
        foreach (var (k, last) in fused)
        {
            // The fused conv: the latest layer behind the last fused node that has no kernel of its own.
            Node? layer = null;
            var frontier = new List<Node> { last };
            var seen = new HashSet<Node>(ReferenceEqualityComparer.Instance) { last };
            for (int hop = 0; hop < MaxFusedHops && frontier.Count > 0 && layer is null; hop++)
            {
                var next = new List<Node>();
                foreach (var n in frontier)
                    foreach (var input in n.Inputs)
                        if (input.Length > 0 && graph.Producer(input) is { } p && seen.Add(p))
                        {
                            if (IsLayer(graph, p)) { if (!claimed.Contains(p) && (layer is null || order[p] > order[layer])) layer = p; }
                            else next.Add(p);
                        }
                frontier = next;
            }
            if (layer is not null) claimed.Add(layer);
            result[k] = layer ?? last;
        }
        return result;
    }

    /// <summary>A Conv, ConvTranspose, Gemm or MatMul with a constant weight: a layer whose cost follows two channel counts.</summary>
    public static bool IsLayer(Graph graph, Node node) =>
        node.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul" && graph.ResolveWeight(node.Input(1)) is not null;
}
