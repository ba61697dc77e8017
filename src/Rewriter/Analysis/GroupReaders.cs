using OnnxSlim.GraphIO;
using OnnxSlim.Spectral;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The layers that read a group's channels through a weight (the next convs, the classifier): for each,
/// the activation it reads, where the group's channels lie on that activation's channel axis (axis 1),
/// and its weights on them, one row per group channel. What calibration-aware planning measures.
/// </summary>
public static class GroupReaders
{
    public sealed record Reader(Node Layer, string Input, int[] Positions, FilterMatrix Weights);

    /// <summary>
    /// Readers whose input is a plain NC… activation: Conv/ConvTranspose with one group and Gemm without
    /// transA. Others (a Flatten of a spatial map, MatMul, grouped convs) are left out; <paramref name="skipped"/>
    /// counts them.
    /// </summary>
    public static IReadOnlyList<Reader> Find(ChannelGroup group, out int skipped)
    {
        ArgumentNullException.ThrowIfNull(group);
        var readers = new List<Reader>();
        skipped = 0;
        foreach (var site in group.Sites.OfType<TensorSite>())
        {
            if (site.Role != SiteRole.ConsumerWeight || !site.Layout.Groups.Contains(group.Id)) continue;
            if (ReaderOf(group, site) is { } reader) readers.Add(reader);
            else skipped++;
        }
        return readers;
    }

    private static Reader? ReaderOf(ChannelGroup group, TensorSite site)
    {
        var node = site.Node;
        bool plainInput = node.OpType switch
        {
            "Conv" or "ConvTranspose" => site.InputIndex == 1 && node.GetInt("group", 1) == 1,
            "Gemm" => site.InputIndex == 1 && node.GetInt("transA", 0) == 0,
            _ => false,
        };
        if (!plainInput || !site.Layout.IsPlain) return null;
        var positions = new int[group.Width];
        for (int j = 0; j < group.Width; j++)
            if ((positions[j] = site.Layout.PositionOf(group.Id, j)) < 0) return null;

        var data = site.Weight.Tensor.ToFloats();
        long[] dims = site.Weight.Tensor.Dims;
        int cols = checked((int)(TensorSlicer.Product(dims, 0, dims.Length) / dims[site.Axis]));
        var rows = new double[(long)group.Width * cols];
        for (int j = 0; j < group.Width; j++)
        {
            var row = TensorSlicer.Take(data, dims, site.Axis, site.Layout.ElementsOf(positions[j]).ElementOffset, 1);
            for (int e = 0; e < cols; e++) rows[(long)j * cols + e] = row[e];
        }
        return new Reader(node, node.Input(0), positions, new FilterMatrix(group.Width, cols, rows));
    }
}
