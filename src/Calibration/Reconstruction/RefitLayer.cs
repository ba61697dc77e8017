using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;

namespace OnnxSlim.Calibration;

/// <summary>
/// A layer whose input channels pruning removed, to re-fit: its node in the pruned graph and in the original,
/// and which original output channels its pruned weight keeps (null: all of them).
/// </summary>
public sealed record RefitLayer(Node Pruned, Node Original, int[]? KeptOutputs)
{
    /// <summary>
    /// The readers of the pruned groups (the weights whose input axis the rewrite sliced), in graph order, from
    /// the groups and keep plan of the analysis: <paramref name="groups"/> was found on the graph that was then
    /// rewritten in place into <paramref name="pruned"/>; <paramref name="originalOf"/> gives a node's counterpart
    /// in the unpruned model (the pipeline pairs them by position before rewriting).
    /// </summary>
    public static List<RefitLayer> FromGroups(ChannelGroupSet groups, IReadOnlyDictionary<int, int[]> keepByGroup,
        Graph pruned, Func<Node, Node?> originalOf)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(keepByGroup);
        var readers = new HashSet<Node>();
        foreach (var id in keepByGroup.Keys)
            foreach (var site in groups[id].Sites.OfType<TensorSite>())
                if (site.Role == SiteRole.ConsumerWeight && site.InputIndex == 1) readers.Add(site.Node);
        var keptByProducer = new Dictionary<Node, int[]>();
        foreach (var id in keepByGroup.Keys)
            foreach (var producer in groups[id].Producers)
                if (ChannelPruner.KeptOutputs(groups, producer, keepByGroup) is { } kept) keptByProducer[producer] = kept;

        var layers = new List<RefitLayer>();
        foreach (var node in pruned.Nodes)
        {
            if (!readers.Contains(node) || originalOf(node) is not { } original) continue;
            layers.Add(new RefitLayer(node, original, keptByProducer.GetValueOrDefault(node)));
        }
        return layers;
    }
}
