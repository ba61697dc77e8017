using OnnxSlim.Rewriter;
using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning;

/// <summary>A tensor axis's element count as a function of the groups' keep counts, read from its channel layout.</summary>
internal static class ChannelCounts
{
    /// <summary>
    /// Null when the layout is not on <paramref name="axis"/>, does not add up to <paramref name="extent"/>, or holds
    /// no prunable group. Frozen groups are constants; a prunable one adds (its elements here / its width) per kept channel.
    /// </summary>
    public static KeptChannels? Of(ChannelGroupSet groups, ChannelLayout? layout, int axis, long extent)
    {
        if (layout is null || layout.Axis != axis) return null;
        double uniform = layout.InnerKnown ? 0 : (double)extent / layout.Channels;
        double constant = 0, total = 0;
        var terms = new List<(int, double)>();
        foreach (var s in layout.Segments)
        {
            double elements = s.Length * (s.Inner > 0 ? s.Inner : uniform);
            total += elements;
            var g = groups[s.Group];
            if (g.Frozen) constant += elements;
            else terms.Add((g.Id, elements / g.Width));
        }
        if (terms.Count == 0 || Math.Abs(total - extent) > 0.5) return null;
        return new KeptChannels(constant, terms);
    }

    /// <summary>Elements per channel on this axis when every segment has the same known inner size, else 1.</summary>
    public static long Unit(ChannelLayout layout) =>
        layout.Segments.Select(s => s.Inner).Distinct().ToList() is [var inner] && inner > 0 ? inner : 1;

    /// <summary>The mean of several counts (a kernel that could be any of them).</summary>
    public static KeptChannels Mean(IReadOnlyList<KeptChannels> counts) =>
        new(counts.Average(c => c.Constant), [.. counts.SelectMany(c => c.Terms.Select(t => (t.Group, t.PerKept / counts.Count)))]);
}
