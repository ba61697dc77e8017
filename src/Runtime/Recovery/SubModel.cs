using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Runtime.Recovery;

/// <summary>
/// A model cut down to what computes some chosen values: only their ancestor nodes, the initializers
/// those read, and the values as the (untyped) outputs. Runs cost what the prefix costs, not the whole
/// network, and weights are shared with the source proto rather than copied before serialisation.
/// </summary>
internal static class SubModel
{
    public static byte[] Build(OnnxModel model, IReadOnlyCollection<string> outputs)
    {
        if (outputs.Count == 0) throw new ArgumentException("a sub-model needs at least one output");
        var graph = model.Graph;
        var needed = Ancestors(graph, outputs);
        var source = model.Proto.Graph;
        var sub = new GraphProto { Name = source.Name };
        // Every runtime input stays declared: callers feed them all, and ORT rejects unknown feeds.
        sub.Input.Add(graph.RuntimeInputs);
        var read = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            if (!needed.Contains(node.Proto)) continue;
            sub.Node.Add(node.Proto);
            foreach (var name in ReadNames(node.Proto)) read.Add(name);
        }
        foreach (var t in source.Initializer) if (read.Contains(t.Name)) sub.Initializer.Add(t);
        foreach (var t in source.SparseInitializer) if (read.Contains(t.Values?.Name ?? "")) sub.SparseInitializer.Add(t);
        foreach (var o in outputs)
        {
            if (graph.Producer(o) is null) throw new ArgumentException($"value '{o}' is not computed by any node");
            sub.Output.Add(new ValueInfoProto { Name = o });
        }
        var proto = new ModelProto
        {
            IrVersion = model.Proto.IrVersion,
            ProducerName = "onnxslim-reconstruction",
            Graph = sub,
        };
        proto.OpsetImport.Add(model.Proto.OpsetImport);
        proto.Functions.Add(model.Proto.Functions);
        return Google.Protobuf.MessageExtensions.ToByteArray(proto);
    }

    /// <summary>Nodes (by proto) whose outputs the given values depend on, subgraph captures included.</summary>
    public static HashSet<NodeProto> Ancestors(Graph graph, IEnumerable<string> values)
    {
        var seen = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<string>(values);
        while (stack.Count > 0)
        {
            var producer = graph.Producer(stack.Pop());
            if (producer is null || !seen.Add(producer.Proto)) continue;
            foreach (var name in ReadNames(producer.Proto)) stack.Push(name);
        }
        return seen;
    }

    /// <summary>Every value a node reads: its inputs and whatever its subgraphs read from outside (over-approximated).</summary>
    public static IEnumerable<string> ReadNames(NodeProto node)
    {
        foreach (var i in node.Input) if (i.Length > 0) yield return i;
        foreach (var a in node.Attribute)
        {
            if (a.G is { } g) foreach (var n in SubgraphReads(g)) yield return n;
            foreach (var sg in a.Graphs) foreach (var n in SubgraphReads(sg)) yield return n;
        }
    }

    private static IEnumerable<string> SubgraphReads(GraphProto g)
    {
        foreach (var n in g.Node)
            foreach (var name in ReadNames(n)) yield return name;
        foreach (var o in g.Output) yield return o.Name;
    }
}
