using OnnxSlim.GraphIO;

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
    public sealed record Result(byte[] Bytes, IReadOnlyList<string> CutInputs, IReadOnlyList<Node> Nodes);

    /// <param name="cut">Values that can be fed instead of computed, with their per-sample shapes.</param>
    public static Result Build(OnnxModel model, IReadOnlyCollection<string> outputs, IReadOnlyDictionary<string, long[]>? cut = null)
    {
        if (outputs.Count == 0) throw new ArgumentException("a sub-model needs at least one output");
        var graph = model.Graph;
        foreach (var o in outputs)
            if (graph.Producer(o) is null) throw new ArgumentException($"value '{o}' is not computed by any node");
        var usable = new HashSet<string>(cut?.Keys ?? [], StringComparer.Ordinal);
        foreach (var o in outputs) usable.Remove(o);
        HashSet<Node> needed;
        HashSet<string> used;
        while (true)
        {
            (needed, used) = Walk(graph, outputs, usable);
            // A cut value that a needed node also produces (a multi-output node) cannot be an input too.
            var clash = needed.SelectMany(n => n.Outputs).Where(used.Contains).ToList();
            if (clash.Count == 0) break;
            foreach (var c in clash) usable.Remove(c);
        }

        var cutInputs = used.Order(StringComparer.Ordinal).ToList();
        var kept = graph.Nodes.Where(needed.Contains).ToList();
        byte[] bytes = model.ExtractBytes(needed, cutInputs.Select(v => (v, cut![v])), "calibration_batch", outputs, "onnxslim-reconstruction");
        return new Result(bytes, cutInputs, kept);
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

    /// <summary>Nodes whose outputs the given values depend on, subgraph captures included.</summary>
    public static HashSet<Node> Ancestors(Graph graph, IEnumerable<string> values) =>
        Walk(graph, values, new HashSet<string>()).Nodes;

    private static (HashSet<Node> Nodes, HashSet<string> CutUsed) Walk(Graph graph, IEnumerable<string> values, HashSet<string> cut)
    {
        var seen = new HashSet<Node>();
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
            if (producer is null || !seen.Add(producer)) continue;
            foreach (var name in producer.ReadNames()) stack.Push(name);
        }
        return (seen, used);
    }
}
