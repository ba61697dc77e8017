using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>Multiply-accumulates and stored parameters of one node (shared weights count in every reader).</summary>
public sealed record NodeCost(Node Node, long Macs, long Params);

/// <summary>
/// MACs and parameters of a model at concrete shapes. MACs count the weight-bearing layers, each as its rule
/// says (<see cref="Layers.Macs"/>: Conv C_out·H_out·W_out·(C_in/group)·k…, Gemm M·N·K, …), times the batch in
/// the shapes given. Parameters are the elements of every
/// float constant the graph reads (initializers and Constant nodes, BatchNorm statistics included), each
/// stored tensor counted once.
/// </summary>
public sealed class ModelCost
{
    private ModelCost(IReadOnlyList<NodeCost> nodes, long macs, long parameters, IReadOnlyList<string> missing)
    {
        Nodes = nodes;
        Macs = macs;
        Params = parameters;
        MissingShapes = missing;
    }

    public IReadOnlyList<NodeCost> Nodes { get; }
    public long Macs { get; }
    public long Params { get; }

    /// <summary>Values whose shape was needed but not given; their nodes count 0 MACs.</summary>
    public IReadOnlyList<string> MissingShapes { get; }

    /// <summary>The values whose concrete shapes <see cref="Compute"/> needs (inputs and outputs of the layers).</summary>
    public static IReadOnlyList<string> RequiredValues(Graph graph) =>
        [.. graph.Nodes.Where(Layers.IsLayer).SelectMany(n => new[] { n.Input(0), n.Outputs[0] }).Where(v => v.Length > 0).Distinct()];

    public static ModelCost Compute(Graph graph, IReadOnlyDictionary<string, long[]> shapes)
    {
        var nodes = new List<NodeCost>();
        var missing = new List<string>();
        var stored = new HashSet<Tensor>();
        long parameters = 0, macs = 0;
        foreach (var node in graph.Nodes)
        {
            long nodeParams = 0;
            foreach (var input in node.Inputs)
            {
                if (input.Length == 0 || graph.ResolveWeight(input) is not { Tensor.IsFloating: true } weight) continue;
                nodeParams += weight.Tensor.ElementCount;
                if (stored.Add(weight.Tensor)) parameters += weight.Tensor.ElementCount;
            }
            long nodeMacs = Layers.IsLayer(node) ? NodeMacs(graph, node, shapes, missing) : 0;
            macs += nodeMacs;
            if (nodeMacs > 0 || nodeParams > 0) nodes.Add(new NodeCost(node, nodeMacs, nodeParams));
        }
        return new ModelCost(nodes, macs, parameters, missing);
    }

    /// <summary>MACs of one layer; 0 (and the value noted) when a shape it needs is missing.</summary>
    internal static long NodeMacs(Graph graph, Node node, IReadOnlyDictionary<string, long[]> shapes, List<string>? missing = null)
    {
        long[]? Shape(string value)
        {
            if (shapes.TryGetValue(value, out var s) && s.All(d => d >= 0)) return s;
            if (graph.Constant(value) is { } c) return c.Dims;
            missing?.Add(value);
            return null;
        }
        long[]? weight = graph.ResolveWeight(node.Input(1))?.Tensor.Dims ?? (node.Input(1).Length > 0 ? Shape(node.Input(1)) : null);
        return Layers.Macs(node, weight, Shape);
    }

    internal static long Product(ReadOnlySpan<long> dims)
    {
        long n = 1;
        foreach (long d in dims) n *= d;
        return n;
    }
}
