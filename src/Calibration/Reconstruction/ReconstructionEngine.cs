using System.Diagnostics;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Calibration;

/// <summary>
/// The ONNX Runtime side of <see cref="Reconstruction"/>: shape probes, the one pass over the original
/// model that samples every layer's targets, and the level-by-level passes over the pruned model that
/// feed each layer's rows, each pass a sub-model that starts from cached activations where it can.
/// Memory stays bounded whatever the number of samples: a pass works batch by batch in one reusable
/// buffer (the arena) sized from a budget that counts ONNX Runtime's own intermediates, and what must
/// outlive a pass (targets, the activations later passes start from) waits in temporary files.
/// </summary>
internal sealed class ReconstructionEngine(OnnxModel original, OnnxModel pruned, CalibrationData calibration, ReconstructionOptions options) : IDisposable
{
    private const int GatherRows = 256;

    private readonly ActivationCache _cache = new(calibration.Images, CacheBudget(options));
    private readonly Dictionary<LayerFit, long> _targetOffsets = [];
    private SpillFile? _targets;
    // Layers whose targets LoadTargets makes from the ranking's recording, with what that takes.
    private TargetRecording? _recording;
    private readonly HashSet<LayerFit> _recorded = [];
    private readonly Dictionary<LayerFit, PooledTargetMap> _maps = [];
    private TargetRows? _rows;
    private Dictionary<string, long[]> _originalShapes = [];
    private Dictionary<string, long[]> _prunedShapes = [];
    private Dictionary<string, TensorElementType> _originalTypes = [];
    private Dictionary<string, TensorElementType> _prunedTypes = [];
    // Arenas the batches are read and run into (see ForEachBatch): kept from pass to pass.
    private readonly List<float[]> _arenas = [];

    /// <summary>
    /// Most nodes a pass runs two batches of side by side. A run of a few nodes holds about what the batch's budget counts;
    /// PP-OCRv4 rec's last pass (232 nodes, its attention blocks) held 100–250 MiB more with two runs at once, and its peak
    /// rose from 0.69 to 0.96 GB for no measurable time.
    /// </summary>
    private const int SideBySideNodes = 8;

    public int RuntimeRuns { get; private set; }

    /// <summary>Time spent creating ONNX Runtime sessions and running them.</summary>
    public double RuntimeSeconds { get; private set; }

    /// <summary>The disk budget, at most half the free space of the temporary folder's drive.</summary>
    private static long CacheBudget(ReconstructionOptions options)
    {
        if (options.CacheBudgetBytes == 0) return 0;
        return TemporaryFile.FreeBytes() is { } free ? Math.Min(options.CacheBudgetBytes, free / 2) : options.CacheBudgetBytes;
    }

    /// <summary>Probes activation shapes on one sample, then lays out each layer's rows; layers that do not fit are reported.</summary>
    /// <param name="recording">The ranking's recording over the same samples: its probe of the original model is taken instead of probing again.</param>
    public List<(ConsumerUnit Unit, LayerLayout Layout)> Plan(List<ConsumerUnit> units, List<LayerReconstruction> layers, TargetRecording? recording = null)
    {
        long start = Stopwatch.GetTimestamp();
        if (recording?.OriginalProbe is var (shapes, types) && recording.Images == calibration.Images)
        {
            _originalShapes = shapes;
            _originalTypes = types;
        }
        else
        {
            _originalShapes = ValueShapes.Probe(original, calibration, options.Provider, out _originalTypes);
            RuntimeRuns++;
        }
        _prunedShapes = ValueShapes.Probe(pruned, calibration, options.Provider, out _prunedTypes);
        RuntimeRuns++;
        RuntimeSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        var fits = new List<(ConsumerUnit, LayerLayout)>();
        foreach (var candidate in units)
        {
            var unit = candidate;
            try
            {
                int originalOutputs = (int)ConsumerDiscovery.OutputDim(unit.OriginalNodes[0],
                    original.Graph.ResolveWeight(unit.OriginalNodes[0].Input(1))!.Tensor.Dims);
                int targetChannels = unit.Pooled ? (int)ConsumerDiscovery.InputDim(unit.OriginalNodes[0],
                    original.Graph.ResolveWeight(unit.OriginalNodes[0].Input(1))!.Tensor.Dims) : originalOutputs * unit.Block;
                var layout = LayerLayout.Plan(unit, [.. unit.FeatureValues.Select(v => Shape(_prunedShapes, v))],
                    [.. unit.TargetValues.Select(v => Shape(_originalShapes, v))], targetChannels, calibration.Images, options);
                if (unit.Chain is { HasSkip: true } chain && !SkipMatches(unit, chain))
                    unit = unit with { Chain = chain.WithoutSkip() is { Useful: true } rest ? rest : null };
                fits.Add((unit, layout));
            }
            catch (LayerSkippedException e)
            {
                layers.Add(Reconstruction.Skip(unit, e.Message));
            }
        }
        return fits;
    }

    private static long[] Shape(Dictionary<string, long[]> shapes, string value) =>
        shapes.TryGetValue(value, out var s) ? s : throw new LayerSkippedException($"'{value}' is not a tensor ONNX Runtime returns");

    /// <summary>The skip operands must have the layer's output shape (no broadcasting): all outputs originally, the kept ones after pruning.</summary>
    private bool SkipMatches(ConsumerUnit unit, OutputChain link)
    {
        if (unit.Pooled) return false;
        long[] target = _originalShapes[unit.TargetValues[0]];
        long[] prunedTarget = [.. target];
        prunedTarget[^(unit.Kind == ConsumerKind.Conv ? target.Length - 1 : 1)] = unit.Outputs;
        return _originalShapes.TryGetValue(link.OriginalSkip!, out var o) && o.SequenceEqual(target)
            && _prunedShapes.TryGetValue(link.PrunedSkip!, out var p) && p.SequenceEqual(prunedTarget);
    }

    /// <summary>
    /// Readies every layer's targets at its sampled rows for <see cref="LoadTargets"/>, which gives a level's out when it
    /// starts: made then from <paramref name="recording"/> (the ranking's pass over the original model) where it holds a
    /// layer's values at exactly its rows, else stored now in a temporary file by one pass over the original model for
    /// the rest. Why not all through the file: the recorded ones would be written and read back once more (PP-OCRv4 rec:
    /// all 34 layers, ~0.5 GB each way) before the first level could start.
    /// </summary>
    public void CollectTargets(List<LayerFit> fits, TargetRecording? recording)
    {
        foreach (var fit in fits)
            if (fit.Unit.Pooled) _maps[fit] = PooledTargetMap.Build(fit.Unit, original.Graph);
        _rows = new TargetRows(fits);
        _recording = recording;
        _recorded.UnionWith(fits.Where(f => Recorded(f, recording)));
        var rest = fits.Where(f => !_recorded.Contains(f)).ToList();
        if (recording is not null)
            options.PassLog?.Invoke($"targets of {_recorded.Count} of {fits.Count} layers from the ranking's pass over the original model ({recording.Bytes >> 20} MiB recorded)");
        if (rest.Count == 0) return;
        _targets = new SpillFile("targets", "the original model's outputs the layers are fitted to");
        long offset = 0;
        foreach (var fit in rest)
        {
            _targetOffsets[fit] = offset;
            offset += (long)fit.Layout.Rows * fit.Unit.Outputs;
        }
        var maps = _maps;
        var rows = _rows;
        var wanted = rest.SelectMany(f => f.Unit.TargetValues.Concat(f.Unit.Chain?.OriginalSkip is { } s ? [s] : []));
        ForEachBatch(original, null, _originalShapes, _originalTypes, wanted, (firstImage, images, values) =>
        {
            foreach (var fit in rest)
                for (int k = 0; k < fit.Unit.Nodes.Count; k++)
                    Gather(fit, k, values[fit.Unit.TargetValues[k]].Span, fit.Unit.Chain?.OriginalSkip is { } s ? values[s].Span : default,
                        firstImage, images, maps.GetValueOrDefault(fit), rows);
        });
    }

    /// <summary>Whether the recording holds a one-node layer's target (and skip operand) at exactly the rows its fit samples.</summary>
    private bool Recorded(LayerFit fit, TargetRecording? recording)
    {
        if (recording is null || fit.Unit.Nodes.Count != 1) return false;
        var node = fit.Layout.Nodes[0];
        string layer = fit.Unit.Nodes[0].Id;
        if (!recording.Covers(fit.Unit.TargetValues[0], layer, skip: false, node.Samples, node.Targets, calibration.Images)) return false;
        return fit.Unit.Chain?.OriginalSkip is not { } skip || recording.Covers(skip, layer, skip: true, node.Samples, node.Targets, calibration.Images);
    }

    /// <summary>Reusable buffers for turning raw rows (every channel) into targets, a block of rows at a time.</summary>
    private sealed class TargetRows(List<LayerFit> fits)
    {
        private static readonly int Rows = GatherRows;
        private static int Channels(List<LayerFit> fits) => fits.SelectMany(f => f.Layout.Nodes).Select(n => n.Targets.Channels).DefaultIfEmpty(1).Max();

        public float[] Targets { get; } = new float[Rows * fits.Select(f => f.Unit.Outputs).DefaultIfEmpty(1).Max()];
        public float[] Raw { get; } = new float[Rows * Channels(fits)];
        public float[] RawSkip { get; } = new float[Rows * Channels(fits)];
    }

    /// <summary>A recorded layer's targets, a block of rows at a time, into <paramref name="targets"/> (rows × outputs).</summary>
    private static void FromRecording(LayerFit fit, TargetRecording recording, PooledTargetMap? map, TargetRows buffers, Span<float> targets)
    {
        var node = fit.Layout.Nodes[0];
        string layer = fit.Unit.Nodes[0].Id;
        string? skip = fit.Unit.Chain?.OriginalSkip;
        int m = fit.Unit.Outputs, channels = node.Targets.Channels;
        for (int block = 0; block < node.Samples.Length; block += GatherRows)
        {
            int count = Math.Min(GatherRows, node.Samples.Length - block);
            recording.Read(fit.Unit.TargetValues[0], layer, skip: false, block, count, buffers.Raw);
            if (skip is not null) recording.Read(skip, layer, skip: true, block, count, buffers.RawSkip);
            // A pooled classifier's map is one product per row: the block's rows go through it together (same bits).
            bool together = map is not null && map.Inputs == channels;
            if (together) map!.Apply(buffers.Raw.AsSpan(0, count * channels), count, targets.Slice(block * m, count * m));
            for (int i = 0; i < count; i++)
                if (!together)
                    TargetRow(fit, map, buffers.Raw.AsSpan(i * channels, channels),
                        skip is null ? default : buffers.RawSkip.AsSpan(i * channels, channels), targets.Slice((block + i) * m, m));
                else Chain(fit, skip is null ? default : buffers.RawSkip.AsSpan(i * channels, channels), targets.Slice((block + i) * m, m));
        }
    }

    /// <summary>Gives each layer of a level its targets, from the recording or back from the temporary file (<see cref="LayerFit.Solve"/> drops them).</summary>
    public void LoadTargets(List<LayerFit> level)
    {
        foreach (var fit in level)
        {
            var targets = LargeArrays.Zeroed<float>((long)fit.Layout.Rows * fit.Unit.Outputs);
            if (_recorded.Contains(fit)) FromRecording(fit, _recording!, _maps.GetValueOrDefault(fit), _rows!, targets);
            else _targets!.Read(_targetOffsets[fit], targets);
            fit.Targets = targets;
        }
    }

    /// <summary>
    /// Writes the targets of one node's sampled rows in a batch of the original model's activations. The rows of
    /// a batch are consecutive (samples are sorted), so they go out in blocks.
    /// </summary>
    private void Gather(LayerFit fit, int node, ReadOnlySpan<float> y, ReadOnlySpan<float> skip, int firstImage, int images,
        PooledTargetMap? map, TargetRows buffers)
    {
        var rows = fit.Layout.Nodes[node];
        var samples = rows.Samples;
        long first = (long)firstImage * rows.RowsPerImage, end = first + (long)images * rows.RowsPerImage;
        int lo = SortedRows.LowerBound(samples, first), hi = SortedRows.LowerBound(samples, end);
        int m = fit.Unit.Outputs, rowBase = fit.Layout.RowOffset(node), channels = rows.Targets.Channels;
        var raw = buffers.Raw.AsSpan(0, channels);
        var rawSkip = buffers.RawSkip.AsSpan(0, channels);
        for (int block = lo; block < hi; block += GatherRows)
        {
            int count = Math.Min(GatherRows, hi - block);
            for (int i = block; i < block + count; i++)
            {
                rows.Targets.GatherAll(y, samples[i] - first, raw);
                if (!skip.IsEmpty) rows.Targets.GatherAll(skip, samples[i] - first, rawSkip);
                TargetRow(fit, map, raw, skip.IsEmpty ? default : rawSkip, buffers.Targets.AsSpan((i - block) * m, m));
            }
            _targets!.Write(_targetOffsets[fit] + (long)(rowBase + block) * m, buffers.Targets.AsSpan(0, count * m));
        }
    }

    /// <summary>
    /// One row's target from its raw values (every channel of the original's output, or of the pool's input, and of
    /// the skip operand): y at the kept outputs (through the pooled map), then through the output chain.
    /// </summary>
    private static void TargetRow(LayerFit fit, PooledTargetMap? map, ReadOnlySpan<float> y, ReadOnlySpan<float> skip, Span<float> destination)
    {
        var kept = fit.Unit.KeptOutputs;
        if (map is null)
            for (int o = 0; o < kept.Length; o++) destination[o] = y[kept[o]];
        else map.Apply(y, destination);
        Chain(fit, skip, destination);
    }

    /// <summary>A row's kept outputs (in <paramref name="destination"/>) through the layer's output chain, if any.</summary>
    private static void Chain(LayerFit fit, ReadOnlySpan<float> skip, Span<float> destination)
    {
        if (fit.Unit.Chain is not { } chain) return;
        var kept = fit.Unit.KeptOutputs;
        for (int o = 0; o < destination.Length; o++) destination[o] = (float)chain.Target(o, destination[o], skip.IsEmpty ? 0 : skip[kept[o]]);
    }

    /// <summary>Keeps in the cache only what a remaining pass could start from: the values the sub-models for the remaining levels' features would read.</summary>
    public void Forget(IReadOnlyList<List<LayerFit>> remaining)
    {
        var features = remaining.SelectMany(l => l).SelectMany(f => f.Unit.FeatureValues.Concat(f.Unit.Chain?.PrunedSkip is { } s ? [s] : []));
        _cache.Retain(SubModel.CutUsed(pruned.Graph, features, _cache.Keys));
    }

    /// <summary>What a level's layers read from the pruned model: their features and the skip operands of their targets.</summary>
    private static IEnumerable<string> Read(IEnumerable<LayerFit> fits) =>
        fits.SelectMany(f => f.Unit.FeatureValues.Concat(f.Unit.Chain?.PrunedSkip is { } s ? [s] : []));

    /// <summary>
    /// One pass of the pruned model (as re-fitted so far) feeding every layer of a level. It also caches the values it
    /// computes that no re-fit of this or a <paramref name="later"/> level changes and from which a later pass would
    /// otherwise recompute much (<see cref="Frontier"/>).
    /// </summary>
    public void Accumulate(List<LayerFit> fits, IReadOnlyList<List<LayerFit>>? later = null)
    {
        var laterRead = later?.SelectMany(Read).Distinct().ToList() ?? [];
        ForEachBatch(pruned, _cache, _prunedShapes, _prunedTypes, Read(fits), (firstImage, images, values) =>
        {
            foreach (var fit in fits)
                for (int k = 0; k < fit.Unit.Nodes.Count; k++)
                    fit.Accumulate(k, values[fit.Unit.FeatureValues[k]], fit.Unit.Chain?.PrunedSkip is { } s ? values[s] : default, firstImage, images);
        }, laterRead.Count == 0 || !options.CacheForLaterPasses ? null : nodes => Frontier(nodes, fits.Concat(later!.SelectMany(l => l)), laterRead));
    }

    /// <summary>Nodes a later pass must run again to get a value that is not cached (see <see cref="Frontier"/>).</summary>
    private const int MinRecomputedNodes = 64;

    /// <summary>
    /// Of the values <paramref name="nodes"/> compute, those a later pass would start from: final ones (no layer still to be
    /// re-fitted, nor any node sharing its weights, lies upstream) where the walk back from <paramref name="laterRead"/>
    /// first meets one, float32 only, and only where recomputing one from what is cached takes at least
    /// <see cref="MinRecomputedNodes"/> nodes. PP-OCRv4 det: the level after the first SE convs' ran the whole backbone
    /// again (382 nodes, ~1 s of ONNX Runtime), the SE block's input being nowhere cached. Why not every such value:
    /// a later pass that starts from a cached value instead of computing it may round differently where ONNX Runtime
    /// fuses nodes across that boundary (PP-OCRv4 rec's SE blocks, where caching saved 17 nodes a pass), so values that
    /// are cheap to recompute are recomputed as before.
    /// </summary>
    private List<string> Frontier(IReadOnlyList<Node> nodes, IEnumerable<LayerFit> unfitted, IReadOnlyList<string> laterRead)
    {
        var graph = pruned.Graph;
        var changing = unfitted.SelectMany(f => f.Unit.Nodes).ToHashSet();
        var weights = changing.SelectMany(n => n.ReadNames()).Where(v => graph.Initializer(v) is not null).ToHashSet(StringComparer.Ordinal);
        var tainted = new HashSet<string>(StringComparer.Ordinal);
        // Graph order is topological; repeated until nothing changes in case a graph lists a node before its producer.
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var node in graph.Nodes)
                if ((changing.Contains(node) || node.ReadNames().Any(v => tainted.Contains(v) || weights.Contains(v)))
                    && node.Outputs.Any(o => o.Length > 0 && !tainted.Contains(o)))
                {
                    tainted.UnionWith(node.Outputs.Where(o => o.Length > 0));
                    grew = true;
                }
        }
        var final = nodes.SelectMany(n => n.Outputs)
            .Where(v => v.Length > 0 && !tainted.Contains(v) && _prunedShapes.ContainsKey(v) && _prunedTypes.GetValueOrDefault(v) == TensorElementType.Float)
            .ToHashSet(StringComparer.Ordinal);
        var cached = _cache.Keys;
        var known = new HashSet<string>(final, StringComparer.Ordinal);
        known.UnionWith(cached);
        return [.. SubModel.CutUsed(graph, laterRead, known)
            .Where(v => final.Contains(v) && !_cache.Contains(v) && SubModel.Ancestors(graph, [v], cached).Count >= MinRecomputedNodes)
            .Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Runs <paramref name="model"/> cut down to <paramref name="values"/> over the calibration set, starting from
    /// whatever <paramref name="cache"/> holds, in batches: every float value fed or returned lies in the arena,
    /// where ONNX Runtime writes its outputs directly, and the batch is what the activation budget allows for
    /// those plus the intermediates ONNX Runtime keeps alive. Hands each batch's values on and caches the new ones.
    /// </summary>
    /// <param name="frontier">Given the nodes the pass runs, values besides <paramref name="values"/> to compute and cache for later passes.</param>
    private void ForEachBatch(OnnxModel model, ActivationCache? cache, Dictionary<string, long[]> shapes, Dictionary<string, TensorElementType> types,
        IEnumerable<string> values, Action<int, int, IReadOnlyDictionary<string, ReadOnlyMemory<float>>> consume,
        Func<IReadOnlyList<Node>, List<string>>? frontier = null)
    {
        var wanted = values.Distinct().ToList();
        var inputs = calibration.Inputs.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        bool Cached(string v) => cache?.Contains(v) == true;
        var computed = wanted.Where(v => !inputs.Contains(v) && !Cached(v)).ToList();
        // The sub-model declares only the inputs its nodes read: one that starts from cached values reads no samples.
        SubModel.Result? sub = computed.Count > 0 ? SubModel.Build(model, computed, cache?.Available, types, onlyReadInputs: true) : null;
        bool Fed(string input) => sub?.ModelInputs.Contains(input) == true;
        // Float inputs are fed from the arena (and held there when a layer reads one); other types are fed as they are,
        // and one of another floating type (float16, …) that a layer reads is also held widened.
        var floatFed = calibration.Inputs.Where(t => t.ElementType == TensorElementType.Float && Fed(t.Name)).Select(t => t.Name).ToList();
        var floatInputs = calibration.Inputs.Where(t => t.ElementType == TensorElementType.Float && (Fed(t.Name) || wanted.Contains(t.Name))).Select(t => t.Name).ToList();
        var otherInputs = calibration.Inputs.Where(t => t.ElementType != TensorElementType.Float && Fed(t.Name)).Select(t => t.Name).ToList();
        var readInputs = calibration.Inputs.Where(t => t.ElementType != TensorElementType.Float && CalibrationData.Widens(t) && wanted.Contains(t.Name)).Select(t => t.Name).ToList();
        var cutInputs = sub?.CutInputs ?? [];
        var fromCache = wanted.Where(Cached).Concat(cutInputs).Distinct().ToList();
        var held = floatInputs.Concat(readInputs).Concat(fromCache).Concat(computed).Distinct().ToList();
        var heldSet = held.ToHashSet(StringComparer.Ordinal);
        // The batch is sized as though every input were held and fed, as before passes skipped the unread ones: the
        // batch sets the chunks the fits' sums are taken in, so another batch would move the fitted weights by roundings.
        var sizedAsHeld = calibration.Inputs.Where(t => t.ElementType == TensorElementType.Float).Select(t => t.Name).Concat(held).Distinct();
        var sizedAsFed = calibration.Inputs.Where(t => t.ElementType != TensorElementType.Float).Select(t => t.Name);
        long perSample = sizedAsHeld.Sum(v => ValueShapes.Bytes(shapes, v)) + sizedAsFed.Sum(v => ValueShapes.Bytes(shapes, v))
            + (sub is null ? 0 : ValueShapes.IntermediateBytes(sub.Nodes, heldSet, shapes));
        int batch = (int)Math.Clamp(options.ActivationBudgetBytes / Math.Max(perSample, 1), 1, Math.Min(options.MaxBatch, calibration.Images));
        // Values cached for later passes come out of the same run, in the arena beside the rest; the batch stays as sized
        // above (it sets the chunks the sums are taken in).
        var extras = sub is not null && cache is not null && frontier is not null
            ? frontier(sub.Nodes).Where(v => !heldSet.Contains(v)).ToList() : [];
        if (extras.Count > 0)
        {
            computed = [.. computed, .. extras];
            held = [.. held, .. extras];
            sub = SubModel.Build(model, computed, cache?.Available, types, onlyReadInputs: true);
        }
        // What this pass starts from must survive the room made for what it computes.
        var pinned = fromCache.ToHashSet(StringComparer.Ordinal);
        var stored = cache is null ? [] : computed.Where(v => cache.Reserve(v, shapes[v], pinned)).ToList();
        long start = Stopwatch.GetTimestamp();
        bool prepack = sub is null || WeightPrepacking.Worthwhile(model.Graph, sub.Nodes);
        using var runner = sub is null ? null : new ModelRunner(sub.Bytes, options.Provider, intraOpThreads: options.PassThreads, spinning: false, prepack: prepack);
        RuntimeSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (runner is not null && FixedBatch(runner) is int fixedBatch) batch = fixedBatch;

        var slots = new Dictionary<string, (long Offset, long PerSample, long[] SampleShape)>(StringComparer.Ordinal);
        long arena = 0;
        foreach (var v in held)
        {
            var shape = shapes.TryGetValue(v, out var s) ? s : cache!.Available[v];
            long per = ValueShapes.Elements(shape);
            slots[v] = (arena, per, shape);
            arena += per * batch;
        }
        Memory<float> Slot(int k, string v, int count) => _arenas[k].AsMemory(checked((int)slots[v].Offset), checked((int)(slots[v].PerSample * count)));
        FloatBuffer Buffer(int k, string v, int count) => new(sub?.Float32Name(v) ?? v, Slot(k, v, count), [count, .. slots[v].SampleShape[1..]]);

        long passStart = Stopwatch.GetTimestamp();
        var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        double runSeconds = 0, runCpu = 0, readSeconds = 0, storeSeconds = 0, consumeSeconds = 0;
        var tally = new object();
        int batches = (calibration.Images + batch - 1) / batch;
        int Count(int b) => Math.Min(batch, calibration.Images - b * batch);
        // Reads batch b into arena k, runs it and caches what later passes start from.
        void Produce(int b, int k)
        {
            int first = b * batch, count = Count(b);
            long t0 = Stopwatch.GetTimestamp();
            foreach (var name in floatInputs.Concat(readInputs)) calibration.CopyFloats(name, first, count, Slot(k, name, count).Span);
            foreach (var v in fromCache) cache!.Read(v, first, count, Slot(k, v, count).Span);
            double read = Stopwatch.GetElapsedTime(t0).TotalSeconds, seconds = 0, cpu = 0;
            if (runner is not null)
            {
                long runStart = Stopwatch.GetTimestamp();
                var cpuRun = Process.GetCurrentProcess().TotalProcessorTime;
                runner.RunInto(calibration.Slice(first, count, otherInputs), [.. floatFed.Concat(cutInputs).Select(v => Buffer(k, v, count))],
                    [.. computed.Select(v => Buffer(k, v, count))]);
                seconds = Stopwatch.GetElapsedTime(runStart).TotalSeconds;
                cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuRun).TotalSeconds;
                foreach (var v in computed)
                {
                    var type = types.GetValueOrDefault(v, TensorElementType.Float);
                    SubModel.RoundToOwnType(Slot(k, v, count).Span, type);
                    FiniteValues.Check(ReferenceEquals(model, original) ? "original" : "pruned", v, Slot(k, v, count).Span, first, slots[v].PerSample, type);
                }
            }
            long t1 = Stopwatch.GetTimestamp();
            foreach (var v in stored) cache!.Store(v, first, Slot(k, v, count).Span);
            lock (tally)
            {
                readSeconds += read;
                storeSeconds += Stopwatch.GetElapsedTime(t1).TotalSeconds;
                if (runner is null) return;
                RuntimeRuns++;
                RuntimeSeconds += seconds;
                runSeconds += seconds;
                runCpu += cpu;
            }
        }
        void Consume(int b, int k)
        {
            long t2 = Stopwatch.GetTimestamp();
            int count = Count(b);
            consume(b * batch, count, wanted.ToDictionary(v => v, v => (ReadOnlyMemory<float>)Slot(k, v, count), StringComparer.Ordinal));
            consumeSeconds += Stopwatch.GetElapsedTime(t2).TotalSeconds;
        }
        // Runs of one ONNX Runtime thread each go side by side (OrderedPipeline) in passes over a few nodes: one run on one
        // core left the other idle whenever the layers' sums took less than the run (ResNet-50's 2–3-node passes). Otherwise
        // one producer reads and runs the batches in turn, up to the spare arenas ahead of their consumption on this thread
        // (with two arenas, read and run in turn with each consumed alongside, an uneven batch's sums held up the next run:
        // PP-OCRv4 rec's 17-node passes, the reconstruction 8.0 → 7.5–7.9 s). Either way they are consumed one at a time
        // and in order, so every sum is what it was.
        int producers = runner is not null && options.ConsumeAlongside && options.Provider == Provider.Cpu && options.PassThreads == 1
            && batches > 1 && Environment.ProcessorCount > 1 ? (sub!.Nodes.Count <= SideBySideNodes ? 2 : 1) : 0;
        int cycle = OrderedPipeline.Arenas(producers, arena * sizeof(float));
        int arenas = Math.Min(cycle, batches);
        while (_arenas.Count < arenas) _arenas.Add([]);
        for (int k = 0; k < arenas; k++)
            if (_arenas[k].LongLength < arena) _arenas[k] = new float[arena];
        OrderedPipeline.Run(batches, producers, cycle, options.ConsumeAlongside, Produce, Consume);
        cache?.Commit();
        options.PassLog?.Invoke($"pass over the {(ReferenceEquals(model, original) ? "original" : "pruned")} model: {sub?.Nodes.Count ?? 0} nodes " +
            $"from {cutInputs.Count} cached values, {wanted.Count} values out ({fromCache.Count} read back{(extras.Count > 0 ? $", {extras.Count} more cached for later passes" : "")}){(prepack ? "" : ", weights not prepacked")}, batch {batch} " +
            $"({(perSample * batch) >> 20} MiB), {Stopwatch.GetElapsedTime(passStart).TotalSeconds:0.00} s ({runSeconds:0.00} s running, {runCpu:0.00} s process CPU meanwhile; {readSeconds:0.00} s reading, {storeSeconds:0.00} s caching, {consumeSeconds:0.00} s accumulating), {(Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalSeconds:0.00} s CPU");
    }

    /// <summary>The batch size a model's first input insists on, if it is fixed (then it must divide the sample count).</summary>
    private int? FixedBatch(ModelRunner runner)
    {
        var dims = runner.Inputs.Values.First().Dimensions;
        if (dims.Length == 0 || dims[0] <= 0) return null;
        if (calibration.Images % dims[0] != 0)
            throw new ArgumentException($"the model's input has a fixed batch of {dims[0]}, which does not divide the {calibration.Images} calibration samples");
        return dims[0];
    }

    public void Dispose()
    {
        _cache.Dispose();
        _targets?.Dispose();
    }
}
