using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Calibration;

/// <summary>
/// A model cut down to what computes some chosen values: only their ancestor nodes, the initializers
/// those read, and the values as the (untyped) outputs. It may also start from already-known values
/// (a cut): those become float inputs and nothing before them is computed. Runs then cost what the
/// segment costs, not the whole network, and weights are shared with the source proto, not copied,
/// until serialisation.
/// </summary>
internal static class SubModel
{
    /// <param name="Nodes">The nodes kept, in graph order.</param>
    public sealed record Result(byte[] Bytes, IReadOnlyList<string> CutInputs, IReadOnlyList<NodeProto> Nodes);

    /// <param name="cut">Values that can be fed instead of computed, with their per-sample shapes.</param>
    public static Result Build(OnnxModel model, IReadOnlyCollection<string> outputs, IReadOnlyDictionary<string, long[]>? cut = null)
    {
        if (outputs.Count == 0) throw new ArgumentException("a sub-model needs at least one output");
        var graph = model.Graph;
        foreach (var o in outputs)
            if (graph.Producer(o) is null) throw new ArgumentException($"value '{o}' is not computed by any node");
        var usable = new HashSet<string>(cut?.Keys ?? [], StringComparer.Ordinal);
        foreach (var o in outputs) usable.Remove(o);
        HashSet<NodeProto> needed;
        HashSet<string> used;
        while (true)
        {
            (needed, used) = Walk(graph, outputs, usable);
            // A cut value that a needed node also produces (a multi-output node) cannot be an input too.
            var clash = needed.SelectMany(n => n.Output).Where(used.Contains).ToList();
            if (clash.Count == 0) break;
            foreach (var c in clash) usable.Remove(c);
        }

        var source = model.Proto.Graph;
        var sub = new GraphProto { Name = source.Name };
        // Every runtime input stays declared: callers feed them all, and ORT rejects unknown feeds.
        sub.Input.Add(graph.RuntimeInputs);
        var cutInputs = used.Order(StringComparer.Ordinal).ToList();
        foreach (var v in cutInputs) sub.Input.Add(FloatInput(v, cut![v]));
        var read = new HashSet<string>(StringComparer.Ordinal);
        var kept = new List<NodeProto>();
        foreach (var node in graph.Nodes)
        {
            if (!needed.Contains(node.Proto)) continue;
            sub.Node.Add(node.Proto);
            kept.Add(node.Proto);
            foreach (var name in ReadNames(node.Proto)) read.Add(name);
        }
        foreach (var t in source.Initializer) if (read.Contains(t.Name)) sub.Initializer.Add(t);
        foreach (var t in source.SparseInitializer) if (read.Contains(t.Values?.Name ?? "")) sub.SparseInitializer.Add(t);
        foreach (var o in outputs) sub.Output.Add(new ValueInfoProto { Name = o });
        var proto = new ModelProto
        {
            IrVersion = model.Proto.IrVersion,
            ProducerName = "onnxslim-reconstruction",
            Graph = sub,
        };
        proto.OpsetImport.Add(model.Proto.OpsetImport);
        proto.Functions.Add(model.Proto.Functions);
        return new Result(Google.Protobuf.MessageExtensions.ToByteArray(proto), cutInputs, kept);
    }

    /// <summary>
    /// The known values a sub-model for <paramref name="outputs"/> would start from (or return directly):
    /// what a cache must keep for that pass.
    /// </summary>
    public static HashSet<string> CutUsed(Graph graph, IEnumerable<string> outputs, IReadOnlySet<string> known)
    {
        var wanted = outputs.ToList();
        var used = Walk(graph, wanted, known.Except(wanted).ToHashSet(StringComparer.Ordinal)).CutUsed;
        used.UnionWith(wanted.Where(known.Contains));
        return used;
    }

    /// <summary>Nodes (by proto) whose outputs the given values depend on, subgraph captures included.</summary>
    public static HashSet<NodeProto> Ancestors(Graph graph, IEnumerable<string> values) =>
        Walk(graph, values, new HashSet<string>()).Nodes;

    private static (HashSet<NodeProto> Nodes, HashSet<string> CutUsed) Walk(Graph graph, IEnumerable<string> values, HashSet<string> cut)
    {
        var seen = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(values);
        while (stack.Count > 0)
        {
            string value = stack.Pop();
            if (cut.Contains(value))
            {
                used.Add(value);
                continue;
            }
            var producer = graph.Producer(value);
            if (producer is null || !seen.Add(producer.Proto)) continue;
            foreach (var name in ReadNames(producer.Proto)) stack.Push(name);
        }
        return (seen, used);
    }

    private static ValueInfoProto FloatInput(string name, long[] sampleShape)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "calibration_batch" });
        foreach (long d in sampleShape.Skip(1)) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = DataType.Float, Shape = shape } },
        };
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
