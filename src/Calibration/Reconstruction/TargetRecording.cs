using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;

namespace OnnxSlim.Calibration;

/// <summary>
/// The original model's values that re-fitted layers will read as targets, at the rows their fits will
/// sample, recorded during the calibrated ranking's pass over the original model so that the reconstruction
/// need not run the original model again. Which layers get re-fitted is only known after planning, so every
/// reader of a ranked group is a candidate: its output (or, behind a global average pool, the pool's input)
/// and the skip operand of a residual Add it feeds, each at the rows <see cref="LayerLayout"/> samples for a
/// one-node layer (same count and seed). Raw values, every channel, in a temporary file; the reconstruction
/// applies kept outputs, pooling map and output chain itself, and runs the original model only for the
/// layers the recording does not cover (shared weights, an unforeseen skip).
/// </summary>
public sealed class TargetRecording : IDisposable
{
    private const int BlockRows = 256;
    private const string RecordedWhat = "the original model's outputs recorded for the reconstruction";

    private readonly int _images;
    private readonly ReconstructionOptions _options;
    private readonly List<Wanted> _wanted = [];
    private readonly Dictionary<(string Value, string Layer, bool Skip), Entry> _entries = [];
    private SpillFile? _file;
    private float[] _scratch = [];

    /// <summary>A value to record for a layer: its target (output or pooled input), or the skip operand sharing the target's rows.</summary>
    /// <param name="Block">k for a ConvTranspose whose k×k kernel equals its stride: a row is an input pixel, read as k² channels per output channel.</param>
    private sealed record Wanted(string Value, string Layer, string Target, bool RowMajor, int Block = 1)
    {
        public bool Skip => Value != Target;
    }

    /// <summary>One recorded value: <see cref="Rows"/> (sorted sample indexes over images × <see cref="Layout"/>.Area), every channel, row-major at <see cref="Offset"/>.</summary>
    private sealed record Entry(ActivationLayout Layout, long[] Rows, long Offset);

    /// <param name="images">The samples the ranking's pass runs, which must be the ones the reconstruction fits on.</param>
    /// <param name="options">The reconstruction's options (its row count and seed decide which rows are recorded).</param>
    public TargetRecording(int images, ReconstructionOptions? options = null)
    {
        if (images < 1) throw new ArgumentException($"a recording needs at least one sample, got {images}", nameof(images));
        _images = images;
        _options = options ?? new ReconstructionOptions();
    }

    public int Images => _images;

    /// <summary>Bytes written to the temporary file.</summary>
    public long Bytes { get; private set; }

    /// <summary>
    /// The per-sample shapes and element types of every value of the original model, as the ranking's pass probed them
    /// on the first calibration sample: the reconstruction's probe of the same model on the same sample, which it takes
    /// instead of running the whole model again (PP-OCRv4 det at 640²: every activation of a page held at once).
    /// Null until that pass ran. Neither side changes the dictionaries.
    /// </summary>
    internal (Dictionary<string, long[]> Shapes, Dictionary<string, TensorElementType> Types)? OriginalProbe { get; set; }

    /// <summary>
    /// Notes the layers that may be re-fitted: Conv, Gemm, MatMul and block ConvTranspose (kernel = stride) readers of the
    /// groups the ranking measures, and their depthwise convs.
    /// </summary>
    internal void AddCandidates(Graph graph, IEnumerable<ChannelGroup> groups)
    {
        var seen = new HashSet<string>(_wanted.Select(w => w.Layer), StringComparer.Ordinal);
        // A layer is named by its node's id, which the rewrite keeps (the seed of its rows comes from it).
        var groupList = groups.ToList();
        var readers = groupList.SelectMany(g => g.Sites).OfType<TensorSite>()
            .Where(s => s.Role == SiteRole.ConsumerWeight && s.InputIndex == 1).Select(s => s.Node);
        // The depthwise convs of the groups are re-fitted too (see RefitLayer.FromGroups): without them here the
        // reconstruction ran the whole original model again for their targets alone.
        foreach (var node in readers.Concat(groupList.SelectMany(g => g.DepthwiseProducers)))
        {
            if (node.IsStandard && node.OpType == "ConvTranspose" && BlockOf(graph, node) is int k && seen.Add(node.Id))
            {
                _wanted.Add(new Wanted(node.Outputs[0], node.Id, node.Outputs[0], false, k)); // fitted without its skip
                continue;
            }
            if (!node.IsStandard || node.OpType is not ("Conv" or "Gemm" or "MatMul") || !seen.Add(node.Id)) continue;
            bool conv = node.OpType == "Conv";
            string output = node.Outputs[0];
            _wanted.Add(new Wanted(output, node.Id, output, !conv));
            if (!conv && ConsumerDiscovery.PoolInput(graph, node) is { } pooled) _wanted.Add(new Wanted(pooled, node.Id, pooled, false));
            if (SkipOperand(graph, output) is { } skip && skip != output) _wanted.Add(new Wanted(skip, node.Id, output, !conv));
        }
    }

    /// <summary>k when a ConvTranspose writes one k×k block per input pixel, as the reconstruction fits it.</summary>
    private static int? BlockOf(Graph graph, Node node) =>
        graph.ResolveWeight(node.Input(1)) is { Tensor.Dims: [_, _, var k, var kw] } && k == kw && k > 1 && ConsumerDiscovery.WritesOwnBlocks(node, k)
            ? (int)k : null;

    /// <summary>The other operand of the residual Add that <paramref name="value"/> reaches through per-channel affine nodes, if any (see <see cref="OutputChain"/>).</summary>
    private static string? SkipOperand(Graph graph, string value)
    {
        for (int hop = 0; hop < 16; hop++)
        {
            if (graph.IsGraphOutput(value) || graph.Consumers(value) is not [var next] || !next.IsStandard) return null;
            if (next.OpType is not ("Add" or "Sub" or "Mul" or "Div" or "BatchNormalization")) return null;
            if (next.OpType == "Add" && next.Inputs.Count == 2)
            {
                string other = next.Input(0) == value ? next.Input(1) : next.Input(0);
                if (other.Length > 0 && other != value && graph.ResolveWeight(other) is null) return other;
            }
            value = next.Outputs[0];
        }
        return null;
    }

    /// <summary>Fixes what is recorded from the pass's per-sample shapes; returns the values the pass must produce.</summary>
    internal IReadOnlyList<string> Plan(IReadOnlyDictionary<string, long[]> shapes)
    {
        _file ??= new SpillFile("recording", RecordedWhat);
        long offset = 0;
        foreach (var w in _wanted)
        {
            // A skip is recorded at its layer's target rows and must have the target's shape.
            if (!shapes.TryGetValue(w.Value, out var shape) || !shapes.TryGetValue(w.Target, out var targetShape) || !shape.SequenceEqual(targetShape)) continue;
            if ((w.Block > 1 ? BlockLayout(shape, w.Block) : Layout(shape, w.RowMajor)) is not { } layout) continue;
            long available = (long)_images * layout.Area;
            int count = available <= _options.SamplePositions ? (int)available : _options.SamplePositions;
            var rows = PositionSampler.Sample(available, count, PositionSampler.LayerSeed(_options.Seed, w.Layer));
            _entries[(w.Value, w.Layer, w.Skip)] = new Entry(layout, rows, offset);
            offset += (long)rows.Length * layout.Channels;
        }
        // Said now rather than when the file fills, after the pass that records it (ResNet-50: 2.9 GB, 20 s on 2 cores).
        TemporaryFile.EnsureRoom(offset * sizeof(float), RecordedWhat);
        return [.. _entries.Keys.Select(k => k.Value).Distinct()];
    }

    /// <summary>How a batch-major value's rows are indexed: channel-major [1, C, …] for a Conv's output or a pool's input, row-major [1, …, C] for Gemm/MatMul.</summary>
    private static ActivationLayout? Layout(long[] shape, bool rowMajor)
    {
        if (shape.Length < 2 || shape[0] != 1) return null;
        long channels = rowMajor ? shape[^1] : shape[1];
        long area = rowMajor ? shape[1..^1].Aggregate(1L, (a, b) => a * b) : shape[2..].Aggregate(1L, (a, b) => a * b);
        if (channels < 1 || area < 1 || channels > int.MaxValue || area > int.MaxValue) return null;
        return new ActivationLayout((int)channels, (int)area, !rowMajor);
    }

    /// <summary>A ConvTranspose's output [1, C, H·k, W·k] as the reconstruction reads it: rows over the H×W input grid, C·k² channels.</summary>
    private static ActivationLayout? BlockLayout(long[] shape, int k)
    {
        if (shape.Length != 4 || shape[0] != 1 || shape[2] % k != 0 || shape[3] % k != 0) return null;
        long channels = shape[1] * k * k, width = shape[3] / k, area = shape[2] / k * width;
        if (channels < 1 || area < 1 || channels > int.MaxValue || area > int.MaxValue) return null;
        return new ActivationLayout((int)channels, (int)area, true, k, (int)width);
    }

    /// <summary>Writes the recorded rows that fall in a batch of images [firstImage, firstImage + images).</summary>
    internal void Record(int firstImage, int images, Func<string, ReadOnlyMemory<float>> valueOf)
    {
        foreach (var ((value, _, _), entry) in _entries)
        {
            var data = valueOf(value).Span;
            var (lo, hi) = Range(entry, firstImage, images);
            long first = (long)firstImage * entry.Layout.Area;
            int channels = entry.Layout.Channels;
            if (_scratch.Length < BlockRows * channels) _scratch = new float[BlockRows * channels];
            for (int block = lo; block < hi; block += BlockRows)
            {
                int count = Math.Min(BlockRows, hi - block);
                entry.Layout.GatherAll(data, entry.Rows.AsSpan(block, count), first, _scratch.AsSpan(0, count * channels));
                _file!.Write(entry.Offset + (long)block * channels, _scratch.AsSpan(0, count * channels));
                Bytes += (long)count * channels * sizeof(float);
            }
        }
    }

    private static (int Lo, int Hi) Range(Entry entry, int firstImage, int images)
    {
        long first = (long)firstImage * entry.Layout.Area, end = first + (long)images * entry.Layout.Area;
        return (SortedRows.LowerBound(entry.Rows, first), SortedRows.LowerBound(entry.Rows, end));
    }

    /// <summary>Whether <paramref name="value"/> was recorded for layer <paramref name="layer"/> (as its target, or as its skip operand) at exactly these rows and layout.</summary>
    internal bool Covers(string value, string layer, bool skip, long[] rows, ActivationLayout layout, int images) =>
        images == _images && _entries.TryGetValue((value, layer, skip), out var e) && e.Layout == layout && e.Rows.AsSpan().SequenceEqual(rows);

    /// <summary>Rows [first, first + count) of a covered value, every channel, row-major.</summary>
    internal void Read(string value, string layer, bool skip, int first, int count, Span<float> destination)
    {
        var e = _entries[(value, layer, skip)];
        _file!.Read(e.Offset + (long)first * e.Layout.Channels, destination[..(count * e.Layout.Channels)]);
    }

    public void Dispose() => _file?.Dispose();
}
