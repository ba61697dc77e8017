using System.Runtime.InteropServices;
using OnnxSlim.GraphIO;
using OnnxSlim.Spectral;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The solver's input for one group: row j stacks, for every producer of the group, its filter for
/// channel j (mode-1 unfolding: Conv weight row j, ConvTranspose weight[:, j], Gemm/MatMul column or row
/// j, a depthwise conv's per-channel kernel), each scaled by the per-channel affine that directly follows
/// that producer (BatchNorm γ/√(var+ε), Mul/Div by a constant): the "effective filters". A weight shared
/// by several producers (RPN head) is stacked once. A grouped conv's filter reads only its conv group's inputs:
/// its row is placed in that group's columns of a block-diagonal layout, so filters of different conv groups
/// are orthogonal and the spectrum is the union of the conv groups' spectra.
/// </summary>
public static class GroupMatrices
{
    private const int MaxAffineHops = 4;

    public static FilterMatrix Build(Graph graph, ChannelGroup group)
    {
        var blocks = new List<(FloatSource Data, long[] Dims, TensorSite Site, double[] Scale, int RowLength, int ConvGroups)>();
        var seen = new HashSet<Tensor>();
        foreach (var producer in group.Producers)
        {
            var site = group.Sites.OfType<TensorSite>().FirstOrDefault(s =>
                s.Node.Equals(producer) && s.Role is SiteRole.ProducerWeight or SiteRole.DepthwiseWeight);
            if (site is null || !seen.Add(site.Weight.Tensor)) continue;
            long[] dims = site.Weight.Tensor.Dims;
            int rowLength = checked((int)(TensorSlicer.Product(dims, 0, dims.Length) / dims[site.Axis]));
            int convGroups = site.Role == SiteRole.ProducerWeight && Layers.Weight(producer, dims) is { Groups: > 1 and var g } ? g : 1;
            blocks.Add((new FloatSource(site.Weight.Tensor), dims, site, AffineScale(graph, group, site), rowLength, convGroups));
        }
        if (blocks.Count == 0) throw new ArgumentException($"group {group.Id} has no producer weights to analyse", nameof(group));
        int cols = blocks.Sum(b => b.RowLength * b.ConvGroups);
        var rows = new GroupRows(group, blocks);
        // Streamed: the Gram is built from the weights panel by panel, and the matrix is stored only if a step needs
        // its rows. A weight with a non-finite value is stored at once, so that the matrix refuses it as before.
        return rows.AllFinite ? new FilterMatrix(group.Width, cols, rows) : new FilterMatrix(group.Width, cols, rows.Store(cols));
    }

    /// <summary>
    /// A group's stacked rows read straight from the producers' float32 weights: row j, columns [col, col + n), is
    /// each producer's filter for channel j widened to float64 and scaled, placed in its conv group's columns of the
    /// producer's block (zeros elsewhere, and where a producer does not hold the channel).
    /// </summary>
    private sealed class GroupRows : IRowSource
    {
        private readonly Block[] _blocks;

        /// <param name="StartOf">Per channel, the column where its filter starts (its conv group's columns of the block).</param>
        private sealed record Block(FloatSource Values, long Size, long Inner, long[] ElementOf, int[] StartOf, double[] Scale, int Length);

        public GroupRows(ChannelGroup group, IReadOnlyList<(FloatSource Data, long[] Dims, TensorSite Site, double[] Scale, int RowLength, int ConvGroups)> producers)
        {
            _blocks = new Block[producers.Count];
            int col = 0;
            for (int b = 0; b < producers.Count; b++)
            {
                var (data, dims, site, scale, rowLength, convGroups) = producers[b];
                long perConvGroup = dims[site.Axis] / convGroups;
                var elementOf = new long[group.Width];
                var startOf = new int[group.Width];
                for (int j = 0; j < group.Width; j++)
                {
                    int position = site.Layout.PositionOf(group.Id, j);
                    elementOf[j] = position < 0 ? -1 : site.Layout.ElementsOf(position).ElementOffset;
                    startOf[j] = position < 0 ? col : col + (int)(elementOf[j] / perConvGroup) * rowLength;
                }
                _blocks[b] = new Block(data, dims[site.Axis], TensorSlicer.Product(dims, site.Axis + 1, dims.Length), elementOf, startOf, scale, rowLength);
                col += rowLength * convGroups;
            }
        }

        public bool AllFinite => _blocks.All(b => IsFinite(b.Values.Values));

        public void Read(int row, int col, Span<double> destination)
        {
            destination.Clear();
            int end = col + destination.Length;
            foreach (var b in _blocks)
            {
                long element = b.ElementOf[row];
                int start = b.StartOf[row];
                int lo = Math.Max(col, start), hi = Math.Min(end, start + b.Length);
                if (element < 0 || lo >= hi) continue;
                var dst = destination.Slice(lo - col, hi - lo);
                WidenSlabs(b.Values.Values, b.Size, b.Inner, element, checked((int)b.Inner), lo - start, dst);
                System.Numerics.Tensors.TensorPrimitives.Multiply(dst, b.Scale[row], dst);
            }
        }

        public double[] Store(int cols)
        {
            var data = new double[(long)_blocks[0].ElementOf.Length * cols];
            for (int j = 0; j < _blocks[0].ElementOf.Length; j++) Read(j, 0, data.AsSpan(checked((int)((long)j * cols)), cols));
            return data;
        }

        private static bool IsFinite(ReadOnlySpan<float> values)
        {
            // x·0 is 0 for every finite x and NaN for ±∞ and NaN: a vectorised dot with zeros finds any of them.
            Span<float> zeros = stackalloc float[1024];
            zeros.Clear();
            for (int at = 0; at < values.Length; at += zeros.Length)
            {
                var chunk = values.Slice(at, Math.Min(zeros.Length, values.Length - at));
                if (System.Numerics.Tensors.TensorPrimitives.Dot(chunk, zeros[..chunk.Length]) != 0) return false;
            }
            return true;
        }
    }

    /// <summary>
    /// Columns [<paramref name="from"/>, from + destination.Length) of a row that holds, outer index by outer index, the
    /// <paramref name="slab"/> values from <paramref name="element"/> along a weight's axis (<paramref name="size"/> long,
    /// <paramref name="inner"/> values after it), widened to float64.
    /// </summary>
    internal static void WidenSlabs(ReadOnlySpan<float> values, long size, long inner, long element, int slab, long from, Span<double> destination)
    {
        for (int at = 0; at < destination.Length;)
        {
            long c = from + at, outer = c / slab, within = c - outer * slab;
            int n = (int)Math.Min(slab - within, destination.Length - at);
            System.Numerics.Tensors.TensorPrimitives.ConvertChecked(values.Slice(checked((int)((outer * size + element) * inner + within)), n), destination.Slice(at, n));
            at += n;
        }
    }

    /// <summary>A weight's float32 values: a view of the stored bytes when possible, else decoded once.</summary>
    internal readonly struct FloatSource
    {
        private readonly ReadOnlyMemory<byte> _raw;
        private readonly float[]? _decoded;

        public FloatSource(Tensor tensor)
        {
            if (!tensor.TryGetRawFloats(out _raw)) _decoded = tensor.ToFloats();
        }

        public ReadOnlySpan<float> Values => _decoded is { } d ? new ReadOnlySpan<float>(d) : MemoryMarshal.Cast<byte, float>(_raw.Span);
    }

    /// <summary>
    /// Per channel, the product of the per-channel scales applied right after the producer (the
    /// <see cref="AffineChain"/>: Mul/Div/Add/Sub by constants, up to and including a BatchNormalization).
    /// Stops at anything else (an activation, a tensor read twice): the scale of a filter matters only up to the
    /// first nonlinearity.
    /// </summary>
    internal static double[] AffineScale(Graph graph, ChannelGroup group, TensorSite producer)
    {
        var scale = Enumerable.Repeat(1.0, group.Width).ToArray();
        foreach (var step in AffineChain.After(graph, producer.Node.Outputs[0], (node, input) => Values(graph, group, node, input)).Take(MaxAffineHops))
        {
            step.Fold(scale, []);
            if (step.IsNormalization) break;
        }
        for (int j = 0; j < scale.Length; j++) if (!double.IsFinite(scale[j])) scale[j] = 0;
        return scale;
    }

    /// <summary>Per group channel, the value of a per-channel (sliced with the group) or scalar constant input; null when it is neither.</summary>
    private static double[]? Values(Graph graph, ChannelGroup group, Node node, int input)
    {
        var site = group.Sites.OfType<TensorSite>().FirstOrDefault(s => s.Node.Equals(node) && s.InputIndex == input);
        if (site is not null)
        {
            var data = site.Weight.Tensor.ToFloats();
            long[] dims = site.Weight.Tensor.Dims;
            var result = new double[group.Width];
            for (int j = 0; j < result.Length; j++)
            {
                int p = site.Layout.PositionOf(group.Id, j);
                result[j] = p < 0 ? 1 : TensorSlicer.Take(data, dims, site.Axis, site.Layout.ElementsOf(p).ElementOffset, 1)[0];
            }
            return result;
        }
        if (graph.ResolveWeight(node.Input(input)) is { Tensor: { IsFloating: true, ElementCount: 1 } scalar })
            return Enumerable.Repeat((double)scalar.ToFloats()[0], group.Width).ToArray();
        return null;
    }
}
