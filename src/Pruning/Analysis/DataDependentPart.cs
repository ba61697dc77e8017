using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;

namespace OnnxSlim.Pruning;

/// <summary>
/// The part of a graph whose value sizes depend on the data: what follows a NonZero, NonMaxSuppression, Unique or
/// Compress (a detector's boxes after NMS, and the heads that run on them), and the layer outputs just before it, which
/// validation compares instead of the outputs. Why: on seeded random inputs a pruned detector lets another number of
/// boxes through (Keypoint R-CNN: 1000 proposals and 100 detections where the original had 0–3), so its outputs
/// cannot be compared, and running its heads on those boxes was most of the validation (4.5 s of 4.7). The feature
/// maps and proposal scores the data-dependent part reads have the same shapes in both models and say how closely
/// the pruned network follows the original.
/// </summary>
public sealed class DataDependentPart
{
    /// <summary>Operators whose output sizes depend on the values of their inputs, not only on their shapes.</summary>
    private static readonly HashSet<string> Sources = new(["NonZero", "NonMaxSuppression", "Unique", "Compress"], StringComparer.Ordinal);

    private DataDependentPart(IReadOnlySet<string> values, IReadOnlyList<string> outputs, IReadOnlyList<string> compared, IReadOnlyList<string> sourceOps)
    {
        Values = values;
        Outputs = outputs;
        Compared = compared;
        SourceOps = sourceOps;
    }

    /// <summary>Every value whose size may depend on the data.</summary>
    public IReadOnlySet<string> Values { get; }

    /// <summary>The graph outputs in the data-dependent part (in graph order).</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>
    /// The values validation compares, in graph order: the layer outputs nearest the data-dependent part, i.e. those that
    /// reach a value it reads (or a graph output outside it) through other operators only (reshapes, sigmoids, pooling…),
    /// besides graph outputs outside it that are no layer's output.
    /// </summary>
    public IReadOnlyList<string> Compared { get; }

    /// <summary>The operator types the part starts at (e.g. NonMaxSuppression, also inside an If), for the report.</summary>
    public IReadOnlyList<string> SourceOps { get; }

    /// <summary>
    /// How reports name a comparison before the part: "layer outputs before the part after NonMaxSuppression (e.g. 'v')"
    /// (<paramref name="count"/> sets the plural), and the outputs left out. One wording for the prune summary and `validate`.
    /// </summary>
    public static (string Values, string OutputsLeft) Wording(IReadOnlyList<string> compared, IReadOnlyList<string> after, IReadOnlyList<string> outputs, int count) =>
        ($"layer output{(count == 1 ? "" : "s")} before the part after {string.Join(", ", after)} (e.g. '{compared[0]}')",
         $"not over the outputs ({string.Join(", ", outputs.Select(o => $"'{o}'"))}), whose sizes depend on the data");

    /// <summary>The part of <paramref name="graph"/> after data-dependent operators; null when no graph output depends on one,
    /// or when no layer output comes before it (nothing to compare then: validation compares the outputs as usual).</summary>
    public static DataDependentPart? Find(Graph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var tainted = new HashSet<string>(StringComparer.Ordinal);
        var sourceOps = new SortedSet<string>(StringComparer.Ordinal);
        var readers = new List<Node>();
        foreach (var node in graph.Nodes)
        {
            // A source inside an If or Loop body (torchvision's NMS runs in an If on whether any box is left) makes the node one.
            var inside = node.HasSubgraphs ? node.SubgraphOpTypes().Where(Sources.Contains).ToList() : [];
            bool source = node.IsStandard && (Sources.Contains(node.OpType) || inside.Count > 0);
            if (!source && !node.ReadNames().Any(tainted.Contains)) continue;
            if (source)
            {
                if (Sources.Contains(node.OpType)) sourceOps.Add(node.OpType);
                sourceOps.UnionWith(inside);
            }
            readers.Add(node);
            foreach (var o in node.Outputs) if (o.Length > 0) tainted.Add(o);
        }
        var outputs = graph.OutputNames.Where(tainted.Contains).ToList();
        if (outputs.Count == 0) return null;

        // What the data-dependent part reads from before it, and the other outputs: the frontier to walk back from.
        var frontier = readers.SelectMany(n => n.ReadNames()).Where(v => !tainted.Contains(v))
            .Concat(graph.OutputNames.Where(v => !tainted.Contains(v))).ToHashSet(StringComparer.Ordinal);
        var compared = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(frontier);
        while (stack.Count > 0)
        {
            string value = stack.Pop();
            if (!seen.Add(value) || graph.Producer(value) is not { } producer) continue;
            if (Layers.IsLayer(producer)) { compared.Add(value); continue; }
            // A shape read says nothing about the values (the anchors of a detector come from the maps' sizes only).
            if (producer.OpType is "Shape" or "Size") continue;
            foreach (var input in producer.ReadNames()) stack.Push(input);
        }
        foreach (var o in graph.OutputNames)
            if (!tainted.Contains(o) && graph.Producer(o) is { } p && !Layers.IsLayer(p)) compared.Add(o);
        if (compared.Count == 0) return null;
        var ordered = graph.Nodes.SelectMany(n => n.Outputs).Where(compared.Contains).ToList();
        return new DataDependentPart(tainted, outputs, ordered, [.. sourceOps]);
    }
}
