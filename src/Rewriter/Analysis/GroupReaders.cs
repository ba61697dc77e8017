using OnnxSlim.GraphIO;
using OnnxSlim.Spectral;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The layers that read a group's channels through a weight (the next convs, the classifier): for each,
/// the activation it reads, where the group's channels lie on that activation's channel axis (axis 1),
/// and its weights on them, one row per group channel. What calibration-aware planning measures.
/// A Gemm reading a Flatten/Reshape of a C×H×W map is measured on the map itself: channel j's row then
/// holds the weights of all its H·W features, which share the channel's moments like kernel taps do.
/// </summary>
public static class GroupReaders
{
    public sealed record Reader(Node Layer, string Input, int[] Positions, FilterMatrix Weights);

    /// <summary>
    /// Readers whose input is an NC… activation: Conv/ConvTranspose with one group, Gemm without transA
    /// (also behind a channel-major flatten). Others (MatMul, grouped convs) are left out;
    /// <paramref name="skipped"/> counts them.
    /// </summary>
    public static IReadOnlyList<Reader> Find(ChannelGroupSet groups, ChannelGroup group, out int skipped)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(group);
        var readers = new List<Reader>();
        skipped = 0;
        foreach (var site in group.Sites.OfType<TensorSite>())
        {
            if (site.Role != SiteRole.ConsumerWeight || !site.Layout.Groups.Contains(group.Id)) continue;
            if (ReaderOf(groups, group, site) is { } reader) readers.Add(reader);
            else skipped++;
        }
        return readers;
    }

    private static Reader? ReaderOf(ChannelGroupSet groups, ChannelGroup group, TensorSite site)
    {
        var node = site.Node;
        bool supported = node.OpType switch
        {
            "Conv" or "ConvTranspose" => site.InputIndex == 1 && node.GetInt("group", 1) == 1,
            "Gemm" => site.InputIndex == 1 && node.GetInt("transA", 0) == 0,
            _ => false,
        };
        if (!supported || !site.Layout.InnerKnown) return null;
        string input = node.Input(0);
        var inputLayout = site.Layout;
        if (!site.Layout.IsPlain)
        {
            // Features of a flattened map: measure the map, channel by channel.
            if (node.OpType != "Gemm" || groups.Graph.Producer(input) is not { OpType: "Flatten" or "Reshape" } flatten) return null;
            input = flatten.Input(0);
            if (groups.LayoutOf(input) is not { IsPlain: true, Axis: 1 } mapLayout) return null;
            inputLayout = mapLayout;
        }
        var positions = new int[group.Width];
        var elements = new (long Offset, long Count)[group.Width];
        for (int j = 0; j < group.Width; j++)
        {
            int p = site.Layout.PositionOf(group.Id, j);
            if (p < 0 || (positions[j] = inputLayout.PositionOf(group.Id, j)) < 0) return null;
            elements[j] = site.Layout.ElementsOf(p);
        }
        if (elements.Any(e => e.Count != elements[0].Count)) return null;

        var data = site.Weight.Tensor.ToFloats();
        long[] dims = site.Weight.Tensor.Dims;
        int cols = checked((int)(TensorSlicer.Product(dims, 0, dims.Length) / dims[site.Axis] * elements[0].Count));
        var rows = new double[(long)group.Width * cols];
        for (int j = 0; j < group.Width; j++)
        {
            var row = TensorSlicer.Take(data, dims, site.Axis, elements[j].Offset, elements[j].Count);
            for (int e = 0; e < cols; e++) rows[(long)j * cols + e] = row[e];
        }
        return new Reader(node, input, positions, new FilterMatrix(group.Width, cols, rows));
    }
}
