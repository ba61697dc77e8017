namespace OnnxSlim.Rewriter;

/// <summary>
/// The shapes values have after <see cref="ChannelPruner.Apply(GraphIO.Graph, ChannelGroupSet, IReadOnlyDictionary{int, int[]}, RewriteOptions?)"/>,
/// worked out from the original's without running the pruned model: pruning changes only the channel axes the groups'
/// layouts describe, to the kept channels times their inner elements (the rewrite's own count, as it declares them). Why: the pruned
/// model's cost needs the shapes of layers a run would have to reach, e.g. a detector's heads after NMS.
/// </summary>
public static class PrunedShapes
{
    /// <summary>
    /// <paramref name="original"/> with every pruned channel axis at its kept extent; null when a layout cannot say it
    /// (a flatten of unknown inner size, or a shape its layout does not describe).
    /// </summary>
    public static Dictionary<string, long[]>? Derive(IReadOnlyDictionary<string, long[]> original, ChannelGroupSet groups, IReadOnlyDictionary<int, int[]> keepByGroup)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(keepByGroup);
        int[] KeepOf(int group) => keepByGroup.TryGetValue(group, out var k) ? k : [.. Enumerable.Range(0, groups[group].Width)];
        var result = new Dictionary<string, long[]>(original, StringComparer.Ordinal);
        foreach (var (value, shape) in original)
        {
            if (groups.LayoutOf(value) is not { } layout || ChannelPruner.KeptIn(layout, 0, layout.Channels, KeepOf) == layout.Channels) continue;
            if (!layout.InnerKnown || shape.Length != layout.Rank || shape[layout.Axis] != layout.Extent) return null;
            long[] pruned = [.. shape];
            pruned[layout.Axis] = ChannelPruner.Indices(layout, KeepOf).Length;
            result[value] = pruned;
        }
        return result;
    }
}
