using OnnxSlim.GraphIO;
using OnnxSlim.Spectral;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The layers that read a group's channels through a weight (the next convs, the classifier): for each,
/// the activation it reads, where the group's channels lie on that activation's channel axis (axis 1),
/// and its weights on them, one row per group channel. What calibration-aware planning measures.
/// A Gemm reading a Flatten/Reshape of a C×H×W map is measured on the map itself: channel j's row then
/// holds the weights of all its H·W features, which share the channel's moments like kernel taps do.
/// Weights are effective ones: each output is scaled by the per-channel affine (BatchNorm…) right after
/// the reader, so a model with BatchNorm folded in ranks like the one without.
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
            if (site.Layout.Repeats(group.Id)) { skipped++; continue; } // one reader of the group in several places: not measured
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

        long[] dims = site.Weight.Tensor.Dims;
        int cols = checked((int)(TensorSlicer.Product(dims, 0, dims.Length) / dims[site.Axis] * elements[0].Count));
        var scale = OutputScale(groups, site, elements[0].Count, cols);
        var rows = new ReaderRows(new GroupMatrices.FloatSource(site.Weight.Tensor), dims[site.Axis], TensorSlicer.Product(dims, site.Axis + 1, dims.Length), elements, scale);
        return new Reader(node, input, positions, new FilterMatrix(group.Width, cols, rows));
    }

    /// <summary>
    /// A reader's weights on the group's channels, a row per channel (its elements along the weight's axis, output by
    /// output), widened and scaled as they are read rather than stored: VGG-16's Flatten→Gemm reader has 4,096 × 49
    /// values per channel, 822 MB in float64, held through the whole plan.
    /// </summary>
    private sealed class ReaderRows(GroupMatrices.FloatSource values, long size, long inner, (long Offset, long Count)[] elements, double[] scale) : IRowSource
    {
        public void Read(int row, int col, Span<double> destination)
        {
            var (element, count) = elements[row];
            GroupMatrices.WidenSlabs(values.Values, size, inner, element, checked((int)(count * inner)), col, destination);
            System.Numerics.Tensors.TensorPrimitives.Multiply(destination, scale.AsSpan(col, destination.Length), destination);
        }
    }

    /// <summary>
    /// Per element of a channel's row, the affine scale of the reader output it feeds (1 where none is
    /// found). The reader is the producer of another group; its output channel at position p of the
    /// producer weight's output axis is that group's channel j with PositionOf(j) = p.
    /// </summary>
    private static double[] OutputScale(ChannelGroupSet groups, TensorSite readerSite, long rowElements, int cols)
    {
        var scale = Enumerable.Repeat(1.0, cols).ToArray();
        var node = readerSite.Node;
        // The reader's outputs may be cut into several groups (sub-ranges of a split): each gives its positions.
        var outputs = groups.Where(g => g.Sites.OfType<TensorSite>().Any(s => s.Node.Equals(node) && s.Role == SiteRole.ProducerWeight)).ToList();
        if (outputs.Count == 0) return scale;
        TensorSite ProducerSite(ChannelGroup g) => g.Sites.OfType<TensorSite>().First(s => s.Node.Equals(node) && s.Role == SiteRole.ProducerWeight);
        var first = ProducerSite(outputs[0]);
        // A row is the weight sliced to rowElements along the reader's axis, in the weight's own order.
        long[] rowDims = [.. first.Weight.Tensor.Dims];
        rowDims[readerSite.Axis] = rowElements;
        long inner = TensorSlicer.Product(rowDims, first.Axis + 1, rowDims.Length), count = rowDims[first.Axis];
        var byPosition = Enumerable.Repeat(1.0, (int)count).ToArray();
        foreach (var output in outputs)
        {
            var producer = ProducerSite(output);
            var perChannel = GroupMatrices.AffineScale(groups.Graph, output, producer);
            for (int j = 0; j < output.Width; j++)
                if (producer.Layout.PositionOf(output.Id, j) is int p && p >= 0 && p < count) byPosition[p] = perChannel[j];
        }
        for (int e = 0; e < cols; e++) scale[e] = byPosition[e / inner % count];
        return scale;
    }
}
