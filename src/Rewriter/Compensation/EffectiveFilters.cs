using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The rows a removed filter is fitted on: per channel, the filters of every (non-depthwise) producer of the
/// group side by side (a weight shared by several producers once), each scaled by the per-channel affine
/// chain that directly follows its producer (Mul/Div/Add/Sub by constants up to and including a
/// BatchNormalization) — the same effective filters the spectral analysis uses. Also the per-channel
/// constant those chains add (conv bias and BatchNorm shift), and the nodes whose scale is folded in.
/// </summary>
internal sealed class EffectiveFilters(int width, int cols, EffectiveFilters.Block[] blocks, double[]? offsetColumn, double[] offsets,
    HashSet<Node> captured) : Spectral.IRowSource
{
    private const int MaxAffineHops = 4;

    private readonly Block[] _blocks = blocks;
    private readonly double[]? _offsetColumn = offsetColumn;
    private double[]? _rows;
    private object? _rowsLock;

    public int Width { get; } = width;
    public int Cols { get; } = cols;

    /// <summary>Per channel, the constant part of the effective pre-activation (summed over producers).</summary>
    public double[] Offsets { get; } = offsets;

    /// <summary>Nodes whose per-channel scale is already in the rows.</summary>
    public HashSet<Node> Captured { get; } = captured;

    /// <summary>
    /// Row j of the stored Width × Cols matrix. The matrix is built on first use only: a fit over the Gram (wide
    /// groups) reads rows through <see cref="Read"/> instead, and VGG-16's first classifier group stored would be 822 MB.
    /// </summary>
    public ReadOnlySpan<double> Row(int j) => LazyInitializer.EnsureInitialized(ref _rows, ref _rowsLock, Materialise).AsSpan(j * Cols, Cols);

    /// <summary>Columns [col, col + destination.Length) of row j, the values <see cref="Row"/> holds.</summary>
    public void Read(int row, int col, Span<double> destination)
    {
        int start = 0, end = col + destination.Length;
        foreach (var b in _blocks)
        {
            int from = Math.Max(col, start), to = Math.Min(end, start + b.RowLength);
            if (from < to) b.Read(row, from - start, destination.Slice(from - col, to - from));
            start += b.RowLength;
        }
        if (_offsetColumn is not null && end > start) destination[start - col] = _offsetColumn[row];
    }

    /// <summary>Whether row j is all zeros (stops at the first non-zero value, usually the first).</summary>
    public bool IsZero(int j)
    {
        foreach (var b in _blocks)
            if (!b.IsZero(j)) return false;
        return _offsetColumn is null || _offsetColumn[j] == 0;
    }

    private double[] Materialise()
    {
        var rows = new double[(long)Width * Cols];
        // Rows are independent: read on all cores (Faster R-CNN's box head group, 1024 × 12544, was ~0.1 s on one).
        Parallel.For(0, Width, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) },
            j => Read(j, 0, rows.AsSpan(j * Cols, Cols)));
        return rows;
    }

    /// <param name="offsetWeight">When positive and every producer is followed by a BatchNorm: one more column per row,
    /// offsetWeight·(t_j/γ_j)·‖w_j‖ (the BatchNorm output's mean in units of its spread, scaled like the row), so that
    /// fits also match where the channel sits relative to zero (what a following ReLU sees).</param>
    public static EffectiveFilters? Build(Graph graph, ChannelGroup group, GroupConstants constants, Func<WeightRef, float[]> floats, double offsetWeight = 0)
    {
        var blocks = new List<Block>();
        var offsets = new double[group.Width];
        var spread = new double[group.Width];
        var captured = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var seen = new HashSet<Tensor>();
        foreach (var producer in group.Producers.Except(group.DepthwiseProducers))
        {
            var site = group.Sites.OfType<TensorSite>().FirstOrDefault(s => s.Node.Equals(producer) && s.Role == SiteRole.ProducerWeight);
            if (site is null || !seen.Add(site.Weight.Tensor)) continue;
            var (scale, offset, gamma) = Chain(graph, group, producer, constants, captured);
            for (int j = 0; j < offsets.Length; j++)
            {
                offsets[j] += offset[j];
                spread[j] += gamma[j] * gamma[j];
            }
            var positions = new long[group.Width];
            for (int j = 0; j < positions.Length; j++)
            {
                int position = site.Layout.PositionOf(group.Id, j);
                positions[j] = position < 0 ? -1 : site.Layout.ElementsOf(position).ElementOffset;
            }
            blocks.Add(new Block(floats(site.Weight), site.Weight.Tensor.Dims, site.Axis, positions, scale));
        }
        if (blocks.Count == 0) return null;
        bool withOffset = offsetWeight > 0 && spread.All(v => v > 0 && double.IsFinite(v));
        int cols = blocks.Sum(b => b.RowLength) + (withOffset ? 1 : 0);
        double[]? offsetColumn = null;
        if (withOffset)
        {
            var plain = new EffectiveFilters(group.Width, cols - 1, [.. blocks], null, offsets, captured);
            var row = new double[cols - 1];
            offsetColumn = new double[group.Width];
            for (int j = 0; j < group.Width; j++)
            {
                plain.Read(j, 0, row);
                double norm = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot<double>(row, row));
                offsetColumn[j] = offsetWeight * offsets[j] / Math.Sqrt(spread[j]) * norm;
            }
        }
        return new EffectiveFilters(group.Width, cols, [.. blocks], offsetColumn, offsets, captured);
    }

    /// <summary>One producer's weight: channel j's filter is its slice at element Positions[j] along Axis (−1: none, zeros), times Scale[j].</summary>
    internal sealed class Block
    {
        private readonly float[] _values;
        private readonly long[] _positions;
        private readonly double[] _scale;
        private readonly long _size, _inner;

        public Block(float[] values, long[] dims, int axis, long[] positions, double[] scale)
        {
            _values = values;
            _positions = positions;
            _scale = scale;
            _size = dims[axis];
            _inner = TensorSlicer.Product(dims, axis + 1, dims.Length);
            RowLength = checked((int)(TensorSlicer.Product(dims, 0, dims.Length) / _size));
        }

        public int RowLength { get; }

        /// <summary>Elements [from, from + destination.Length) of channel j's scaled filter.</summary>
        public void Read(int j, int from, Span<double> destination)
        {
            long p = _positions[j];
            if (p < 0) { destination.Clear(); return; }
            double scale = _scale[j];
            for (int k = 0; k < destination.Length; k++)
            {
                long e = from + k, o = e / _inner, i = e - o * _inner;
                destination[k] = scale * _values[(o * _size + p) * _inner + i];
            }
        }

        public bool IsZero(int j)
        {
            long p = _positions[j];
            if (p < 0) return true;
            double scale = _scale[j];
            for (long e = 0; e < RowLength; e++)
            {
                long o = e / _inner, i = e - o * _inner;
                if (scale * _values[(o * _size + p) * _inner + i] != 0) return false;
            }
            return true;
        }
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
