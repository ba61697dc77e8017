using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// Float tensors computed from stored ones alone (weight normalisation's ReduceL2, Div and Mul; a Reshape or a Mul by a
/// stored scale) are computed once on ONNX Runtime and stored, where something that depends on the samples reads them.
/// PyTorch exports weights so with <c>do_constant_folding=False</c>; the channel rules prune only layers whose weight is
/// stored, so such a layer's channels were frozen. The stored values are the ones ONNX Runtime computes, so the graph
/// computes what it did. A Transpose is folded before (<see cref="Rewriter.StoredTransposes"/>, exact and without a
/// session); Identity and float Casts of a stored tensor (float16 weights) stay, as the rules read through them.
/// </summary>
internal static class ComputedWeightFolding
{
    /// <summary>Ops never folded: random ones, and dequantisation (a quantised model's weights would be stored widened).</summary>
    private static readonly HashSet<string> Kept = new(StringComparer.Ordinal)
    {
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout",
        "DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear", "Constant",
    };

    /// <summary>Largest value folded, in elements: a blow-up (an Expand of a scalar to a map) is left to compute.</summary>
    private const long MaxElements = 1L << 28;

    /// <summary>Folds every such value of <paramref name="model"/> in place and returns how many, with one of the layers that read them.</summary>
    public static (int Folded, string? Example) Fold(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        var (constant, types) = ConstantNodes(graph);
        var values = Frontier(graph, constant, types);
        if (values.Count == 0) return (0, null);
        IReadOnlyList<NamedTensor> computed;
        try
        {
            using var part = model.ExtractModel(graph.NodesComputing(values), [], "", values, "onnxslim-fold");
            using var runner = new ModelRunner(part);
            computed = runner.Run([]);
        }
        catch (Exception e) when (e is RuntimeUnavailableException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException or ModelFormatException)
        {
            // What ONNX Runtime cannot compute alone stays computed: the refusal's hint (ComputedWeights) names the layers.
            return (0, null);
        }
        var folded = new List<string>();
        foreach (var t in computed)
        {
            int type = (int)t.ElementType;
            if (t.ElementCount > MaxElements || !Stored(type)) continue;
            graph.AddInitializer(GraphIO.Tensor.FromFloats(t.Name, t.Shape, t.AsFloats().AsSpan(0, checked((int)t.ElementCount)), type));
            folded.Add(t.Name);
        }
        if (folded.Count == 0) return (0, null);
        var now = folded.ToHashSet(StringComparer.Ordinal);
        foreach (var node in constant.Where(n => n.Outputs.Any(now.Contains)).ToList()) graph.RemoveNode(node);
        graph.Reindex();
        RemoveUnread(graph, constant);
        graph.RemoveUnusedInitializers();
        string? example = folded.SelectMany(graph.Consumers).FirstOrDefault()?.Id;
        return (folded.Count, example);
    }

    /// <summary>
    /// Nodes (standard, deterministic, no subgraphs) whose every input is stored or computed by such nodes, with their
    /// outputs' element types where the op says them (<see cref="OutputType"/>).
    /// </summary>
    private static (HashSet<Node> Nodes, Dictionary<string, int> Types) ConstantNodes(Graph graph)
    {
        var types = graph.Initializers.ToDictionary(t => t.Key, t => t.Value.DataType, StringComparer.Ordinal);
        var nodes = new HashSet<Node>();
        foreach (var node in graph.Nodes)
        {
            if (node.OpType == "Constant" && node.IsStandard && graph.Constant(node.Outputs[0]) is { } value)
            {
                types[node.Outputs[0]] = value.DataType;
                continue;
            }
            if (!node.IsStandard || node.HasSubgraphs || Kept.Contains(node.OpType) || node.Inputs.Count == 0
                || !node.Inputs.All(i => i.Length == 0 || types.ContainsKey(i))) continue;
            nodes.Add(node);
            int type = OutputType(node, types);
            foreach (var o in node.Outputs.Where(o => o.Length > 0)) types[o] = type;
        }
        return (nodes, types);
    }

    /// <summary>The element type of a constant node's outputs: its 'to' or of its data input; 0 where the op makes another.</summary>
    private static int OutputType(Node node, Dictionary<string, int> types) => node.OpType switch
    {
        "Cast" => (int)node.GetInt("to", 0),
        "Where" => types.GetValueOrDefault(node.Input(1)),
        "Shape" or "Size" or "NonZero" or "ArgMax" or "ArgMin" or "Equal" or "Less" or "LessOrEqual" or "Greater"
            or "GreaterOrEqual" or "Not" or "And" or "Or" or "Xor" or "IsNaN" or "IsInf" or "ConstantOfShape" or "Range"
            or "OneHot" or "EyeLike" or "TopK" or "Unique" or "CastLike" => 0,
        _ => types.GetValueOrDefault(node.Input(0)),
    };

    /// <summary>
    /// The float outputs of constant single-output nodes that a sample-dependent node reads, where they are not stored
    /// tensors behind Identity or a float Cast already and are not the model's outputs: the values to store. Their
    /// producers go, and with them the ancestors nothing else reads.
    /// </summary>
    private static List<string> Frontier(Graph graph, HashSet<Node> constant, Dictionary<string, int> types) =>
        [.. constant.Where(n => n.Outputs.Count(o => o.Length > 0) == 1).Select(n => n.Outputs.First(o => o.Length > 0))
            .Where(v => Stored(types.GetValueOrDefault(v)) && !graph.IsGraphOutput(v) && graph.ResolveWeight(v) is null
                && graph.Consumers(v).Any(c => !constant.Contains(c)))];

    /// <summary>Removes the constant nodes nothing reads any more (the ancestors of what was stored), repeatedly.</summary>
    private static void RemoveUnread(Graph graph, HashSet<Node> constant)
    {
        for (bool removed = true; removed;)
        {
            var unread = graph.Nodes.Where(n => constant.Contains(n)
                && n.Outputs.All(o => o.Length == 0 || graph.Consumers(o).Count == 0 && !graph.IsGraphOutput(o))).ToList();
            foreach (var node in unread) graph.RemoveNode(node);
            graph.Reindex();
            removed = unread.Count > 0;
        }
    }

    /// <summary>
    /// The element types folded: a float weight's (ONNX Runtime numbers its element types as ONNX numbers its data types,
    /// so a computed tensor's type is checked and stored as it comes).
    /// </summary>
    private static bool Stored(int dataType) => dataType is DataType.Float or DataType.Float16 or DataType.BFloat16;
}
