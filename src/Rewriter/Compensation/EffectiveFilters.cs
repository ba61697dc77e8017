using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The rows a removed filter is fitted on: per channel, the filters of every (non-depthwise) producer of the
/// group side by side (a weight shared by several producers once), each scaled by the per-channel affine
/// chain that directly follows its producer (Mul/Div/Add/Sub by constants up to and including a
/// BatchNormalization) — the same effective filters the spectral analysis uses. Also the per-channel
/// constant those chains add (conv bias and BatchNorm shift), and the nodes whose scale is folded in.
/// </summary>
/// <param name="Rows">Row-major Width × Cols.</param>
/// <param name="Offsets">Per channel, the constant part of the effective pre-activation (summed over producers).</param>
/// <param name="Captured">Nodes whose per-channel scale is already in the rows.</param>
internal sealed record EffectiveFilters(int Width, int Cols, double[] Rows, double[] Offsets, HashSet<Node> Captured)
{
    private const int MaxAffineHops = 4;

    public ReadOnlySpan<double> Row(int j) => Rows.AsSpan(j * Cols, Cols);

    /// <param name="offsetWeight">When positive and every producer is followed by a BatchNorm: one more column per row,
    /// offsetWeight·(t_j/γ_j)·‖w_j‖ (the BatchNorm output's mean in units of its spread, scaled like the row), so that
    /// fits also match where the channel sits relative to zero (what a following ReLU sees).</param>
    public static EffectiveFilters? Build(Graph graph, ChannelGroup group, GroupConstants constants, Func<WeightRef, float[]> floats, double offsetWeight = 0)
    {
        var blocks = new List<(float[] Data, long[] Dims, TensorSite Site, double[] Scale, int RowLength)>();
        var offsets = new double[group.Width];
        var spread = new double[group.Width];
        var captured = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var seen = new HashSet<Tensor>();
        foreach (var producer in group.Producers.Except(group.DepthwiseProducers))
        {
            var site = group.Sites.OfType<TensorSite>().FirstOrDefault(s => s.Node.Equals(producer) && s.Role == SiteRole.ProducerWeight);
            if (site is null || !seen.Add(site.Weight.Tensor)) continue;
            long[] dims = site.Weight.Tensor.Dims;
            int rowLength = checked((int)(TensorSlicer.Product(dims, 0, dims.Length) / dims[site.Axis]));
            var (scale, offset, gamma) = Chain(graph, group, producer, constants, captured);
            for (int j = 0; j < offsets.Length; j++)
            {
                offsets[j] += offset[j];
                spread[j] += gamma[j] * gamma[j];
            }
            blocks.Add((floats(site.Weight), dims, site, scale, rowLength));
        }
        if (blocks.Count == 0) return null;
        bool withOffset = offsetWeight > 0 && spread.All(v => v > 0 && double.IsFinite(v));
        int cols = blocks.Sum(b => b.RowLength) + (withOffset ? 1 : 0);
        var rows = new double[(long)group.Width * cols];
        for (int j = 0; j < group.Width; j++)
        {
            int col = 0;
            foreach (var (values, dims, site, scale, rowLength) in blocks)
            {
                int position = site.Layout.PositionOf(group.Id, j);
                if (position >= 0)
                {
                    var row = TensorSlicer.Take(values, dims, site.Axis, site.Layout.ElementsOf(position).ElementOffset, 1);
                    for (int e = 0; e < rowLength; e++) rows[(long)j * cols + col + e] = scale[j] * row[e];
                }
                col += rowLength;
            }
            if (withOffset)
            {
                var row = rows.AsSpan((int)((long)j * cols), cols - 1);
                double norm = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(row, row));
                rows[(long)j * cols + cols - 1] = offsetWeight * offsets[j] / Math.Sqrt(spread[j]) * norm;
            }
        }
        return new EffectiveFilters(group.Width, cols, rows, offsets, captured);
    }

    /// <summary>Scale and offset of the affine chain right after a producer: y = scale·(W·x) + offset; and the BatchNorm's |γ| (NaN without one).</summary>
    private static (double[] Scale, double[] Offset, double[] Gamma) Chain(Graph graph, ChannelGroup group, Node producer, GroupConstants constants, HashSet<Node> captured)
    {
        var scale = Enumerable.Repeat(1.0, group.Width).ToArray();
        var offset = new double[group.Width];
        var spread = Enumerable.Repeat(double.NaN, group.Width).ToArray();
        int biasInput = Layers.Weight(graph, producer)?.BiasInput ?? -1;
        if (biasInput >= 0 && constants.Of(producer, biasInput) is { } bias)
            for (int j = 0; j < offset.Length; j++) offset[j] = double.IsNaN(bias[j]) ? 0 : bias[j];
        foreach (var step in AffineChain.After(graph, producer.Outputs[0], constants.Of).Take(MaxAffineHops))
        {
            if (!step.OffsetKnown) break;
            step.Fold(scale, offset);
            captured.Add(step.Node);
            if (!step.IsNormalization) continue;
            var gamma = constants.Of(step.Node, 1)!;
            for (int j = 0; j < spread.Length; j++) spread[j] = Math.Abs(gamma[j]);
            break;
        }
        for (int j = 0; j < scale.Length; j++)
        {
            if (!double.IsFinite(scale[j])) scale[j] = 0;
            if (!double.IsFinite(offset[j])) offset[j] = 0;
        }
        return (scale, offset, spread);
    }
}
