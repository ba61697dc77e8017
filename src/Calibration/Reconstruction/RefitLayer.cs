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
    /// <param name="depthwise">Also the depthwise convs of the pruned groups: they read only kept channels, but channels the
    /// re-fitted layer before them could only approximate, and a per-channel re-fit (its taps and bias) takes part of
    /// that error back before the next layer mixes the channels.</param>
    public static List<RefitLayer> FromGroups(ChannelGroupSet groups, IReadOnlyDictionary<int, int[]> keepByGroup,
        Graph pruned, Func<Node, Node?> originalOf, bool depthwise = true)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(keepByGroup);
        var readers = new HashSet<Node>();
        foreach (var id in keepByGroup.Keys)
            foreach (var site in groups[id].Sites.OfType<TensorSite>())
                if (site.Role == SiteRole.ConsumerWeight && site.InputIndex == 1) readers.Add(site.Node);
        if (depthwise)
            foreach (var id in keepByGroup.Keys)
                foreach (var node in groups[id].DepthwiseProducers) readers.Add(node);
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
