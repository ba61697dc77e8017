using System.Diagnostics;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// The ONNX Runtime side of <see cref="Reconstruction"/>: shape probes, the pass over the original
/// model that samples targets, and the level-by-level passes over the pruned model that feed each
/// layer's rows, each pass a sub-model that starts from cached activations where it can.
/// </summary>
internal sealed class ReconstructionEngine(OnnxModel original, OnnxModel pruned, CalibrationSet calibration, ReconstructionOptions options)
{
    private readonly ActivationCache _originalCache = new(calibration.Images, options.CacheBudgetBytes / 2);
    private readonly ActivationCache _prunedCache = new(calibration.Images, options.CacheBudgetBytes / 2);
    private Dictionary<string, long[]> _originalShapes = [];
    private Dictionary<string, long[]> _prunedShapes = [];

    public int RuntimeRuns { get; private set; }

    /// <summary>Time spent creating ONNX Runtime sessions and running them.</summary>
    public double RuntimeSeconds { get; private set; }

    /// <summary>Probes activation shapes on one sample, then lays out each layer's rows; layers that do not fit are reported.</summary>
    public List<(ConsumerUnit Unit, LayerLayout Layout)> Plan(List<ConsumerUnit> units, List<LayerReconstruction> layers)
    {
        _originalShapes = Probe(original, units.SelectMany(u => u.TargetValues.Concat(u.Chain?.OriginalSkip is { } s ? [s] : [])));
        _prunedShapes = Probe(pruned, units.SelectMany(u => u.FeatureValues.Concat(u.Chain?.PrunedSkip is { } s ? [s] : [])));
        var fits = new List<(ConsumerUnit, LayerLayout)>();
        foreach (var candidate in units)
        {
            var unit = candidate;
            try
            {
                int originalOutputs = (int)ConsumerDiscovery.OutputDim(unit.OriginalNodes[0],
                    original.Graph.ResolveWeight(unit.OriginalNodes[0].Input(1))!.Tensor.Dims);
                int targetChannels = unit.Pooled ? (int)ConsumerDiscovery.InputDim(unit.OriginalNodes[0],
                    original.Graph.ResolveWeight(unit.OriginalNodes[0].Input(1))!.Tensor.Dims) : originalOutputs;
                var layout = LayerLayout.Plan(unit, [.. unit.FeatureValues.Select(v => _prunedShapes[v])],
                    [.. unit.TargetValues.Select(v => _originalShapes[v])], targetChannels, calibration.Images, options);
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

    /// <summary>The skip operands must have the layer's output shape (no broadcasting): all outputs originally, the kept ones after pruning.</summary>
    private bool SkipMatches(ConsumerUnit unit, OutputChain link)
    {
        if (unit.Pooled) return false;
        long[] target = _originalShapes[unit.TargetValues[0]];
        long[] prunedTarget = [.. target];
        prunedTarget[^(unit.Kind == ConsumerKind.Conv ? target.Length - 1 : 1)] = unit.Outputs;
        return _originalShapes[link.OriginalSkip!].SequenceEqual(target) && _prunedShapes[link.PrunedSkip!].SequenceEqual(prunedTarget);
    }

    /// <summary>Per-sample shapes of the given values (one sample through a sub-model that stops at them).</summary>
    private Dictionary<string, long[]> Probe(OnnxModel model, IEnumerable<string> values)
    {
        var result = new Dictionary<string, long[]>(StringComparer.Ordinal);
        var one = calibration.Slice(0, 1);
        var computed = new List<string>();
        foreach (var v in values.Distinct())
        {
            if (one.FirstOrDefault(t => t.Name == v) is { } input) result[v] = input.Shape;
            else computed.Add(v);
        }
        if (computed.Count == 0) return result;
        long start = Stopwatch.GetTimestamp();
        using var runner = new ModelRunner(SubModel.Build(model, computed).Bytes, options.Provider);
        RuntimeRuns++;
        foreach (var t in runner.Run(one)) result[t.Name] = t.Shape;
        RuntimeSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        return result;
    }

    /// <summary>
    /// Runs the original model over the calibration set and stores each layer's targets at its sampled
    /// rows; <paramref name="cache"/> keeps the activations for later passes (worth it level by level).
    /// </summary>
    public void CollectTargets(List<LayerFit> fits, bool cache)
    {
        var maps = new Dictionary<LayerFit, PooledTargetMap>();
        foreach (var fit in fits)
        {
            fit.Targets = new float[(long)fit.Layout.Rows * fit.Unit.Outputs];
            if (fit.Unit.Pooled) maps[fit] = PooledTargetMap.Build(fit.Unit, original.Graph);
        }
        var wanted = fits.SelectMany(f => f.Unit.TargetValues.Concat(f.Unit.Chain?.OriginalSkip is { } s ? [s] : []));
        ForEachBatch(original, cache ? _originalCache : null, _originalShapes, wanted, (firstImage, images, values) =>
        {
            foreach (var fit in fits)
                for (int k = 0; k < fit.Unit.Nodes.Count; k++)
                    Gather(fit, k, values[fit.Unit.TargetValues[k]], fit.Unit.Chain?.OriginalSkip is { } s ? values[s] : null,
                        firstImage, images, maps.GetValueOrDefault(fit));
        });
    }

    /// <summary>Stores the targets of one node's sampled rows in a batch: y at the kept outputs (through the pooled map), then through the output chain.</summary>
    private static void Gather(LayerFit fit, int node, float[] y, float[]? skip, int firstImage, int images, PooledTargetMap? map)
    {
        var rows = fit.Layout.Nodes[node];
        var samples = rows.Samples;
        long first = (long)firstImage * rows.RowsPerImage, end = first + (long)images * rows.RowsPerImage;
        int m = fit.Unit.Outputs, rowBase = fit.Layout.RowOffset(node);
        var targets = fit.Targets!;
        var channels = map is null ? fit.Unit.KeptOutputs : Enumerable.Range(0, rows.Targets.Channels).ToArray();
        var buffer = new float[channels.Length];
        var chain = fit.Unit.Chain;
        var skipped = new float[m];
        for (int i = 0; i < samples.Length; i++)
        {
            if (samples[i] < first || samples[i] >= end) continue;
            var destination = targets.AsSpan((rowBase + i) * m, m);
            if (map is null) rows.Targets.Gather(y, samples[i] - first, channels, destination);
            else
            {
                rows.Targets.Gather(y, samples[i] - first, channels, buffer);
                map.Apply(buffer, destination);
            }
            if (chain is null) continue;
            if (skip is not null) rows.Targets.Gather(skip, samples[i] - first, fit.Unit.KeptOutputs, skipped);
            for (int o = 0; o < m; o++) destination[o] = (float)chain.Target(o, destination[o], skip is null ? 0 : skipped[o]);
        }
    }

    /// <summary>
    /// Keeps in each cache only what a remaining pass could start from: the values the sub-models for the
    /// remaining levels' features (pruned) and, when targets come level by level, targets (original) would read.
    /// </summary>
    public void Forget(IReadOnlyList<List<LayerFit>> remaining, bool targetsPending)
    {
        var features = remaining.SelectMany(l => l).SelectMany(f => f.Unit.FeatureValues.Concat(f.Unit.Chain?.PrunedSkip is { } s ? [s] : []));
        _prunedCache.Retain(SubModel.CutUsed(pruned.Graph, features, _prunedCache.Keys));
        var targets = targetsPending
            ? remaining.SelectMany(l => l).SelectMany(f => f.Unit.TargetValues.Concat(f.Unit.Chain?.OriginalSkip is { } s ? [s] : []))
            : [];
        _originalCache.Retain(SubModel.CutUsed(original.Graph, targets, _originalCache.Keys));
    }

    /// <summary>One pass of the pruned model (as re-fitted so far) feeding every layer of a level.</summary>
    public void Accumulate(List<LayerFit> fits)
    {
        var wanted = fits.SelectMany(f => f.Unit.FeatureValues.Concat(f.Unit.Chain?.PrunedSkip is { } s ? [s] : []));
        ForEachBatch(pruned, _prunedCache, _prunedShapes, wanted, (firstImage, images, values) =>
        {
            foreach (var fit in fits)
                for (int k = 0; k < fit.Unit.Nodes.Count; k++)
                    fit.Accumulate(k, values[fit.Unit.FeatureValues[k]], fit.Unit.Chain?.PrunedSkip is { } s ? values[s] : null, firstImage, images);
        });
    }

    /// <summary>
    /// Runs <paramref name="model"/> cut down to <paramref name="values"/> over the calibration set,
    /// starting from whatever <paramref name="cache"/> holds, in batches sized so the activations a
    /// run takes and returns stay within the budget; hands each batch's values on and caches them.
    /// </summary>
    private void ForEachBatch(OnnxModel model, ActivationCache? cache, Dictionary<string, long[]> shapes, IEnumerable<string> values,
        Action<int, int, IReadOnlyDictionary<string, float[]>> consume)
    {
        cache ??= new ActivationCache(calibration.Images, 0);
        var wanted = values.Distinct().ToList();
        var inputs = calibration.Inputs.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var computed = wanted.Where(v => !inputs.Contains(v) && !cache.Contains(v)).ToList();
        SubModel.Result? sub = computed.Count > 0 ? SubModel.Build(model, computed, cache.Available) : null;
        var cutInputs = sub?.CutInputs ?? [];
        var fromCache = wanted.Where(cache.Contains).Concat(cutInputs).Distinct().ToList();
        long perImage = Math.Max(1, computed.Concat(fromCache).Sum(v => Elements(shapes.GetValueOrDefault(v) ?? cache.Available[v])) * sizeof(float));
        int batch = (int)Math.Clamp(options.ActivationBudgetBytes / perImage, 1, options.MaxBatch);
        // What this pass starts from must survive the room made for what it computes.
        var pinned = fromCache.ToHashSet(StringComparer.Ordinal);
        var stored = computed.Where(v => cache.Reserve(v, shapes[v], pinned)).ToList();
        long start = Stopwatch.GetTimestamp();
        using var runner = sub is null ? null : new ModelRunner(sub.Bytes, options.Provider);
        RuntimeSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (runner is not null && FixedBatch(runner) is int fixedBatch) batch = fixedBatch;
        for (int first = 0; first < calibration.Images; first += batch)
        {
            int count = Math.Min(batch, calibration.Images - first);
            var feed = calibration.Slice(first, count);
            var found = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var t in feed)
                if (wanted.Contains(t.Name)) found[t.Name] = t.AsFloats();
            var cached = fromCache.ToDictionary(v => v, v => cache.Slice(v, first, count), StringComparer.Ordinal);
            foreach (var v in wanted) if (cached.TryGetValue(v, out var c)) found[v] = (float[])c.Data;
            if (runner is not null)
            {
                RuntimeRuns++;
                start = Stopwatch.GetTimestamp();
                var outputs = runner.Run([.. feed, .. cutInputs.Select(v => cached[v])]);
                RuntimeSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
                foreach (var t in outputs)
                    found[t.Name] = t.AsFloats();
            }
            foreach (var v in stored) cache.Store(v, first, found[v]);
            consume(first, count, found);
        }
        cache.Commit();
    }

    private static long Elements(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The batch size a model's first input insists on, if it is fixed (then it must divide the sample count).</summary>
    private int? FixedBatch(ModelRunner runner)
    {
        var dims = runner.Inputs.Values.First().Dimensions;
        if (dims.Length == 0 || dims[0] <= 0) return null;
        if (calibration.Images % dims[0] != 0)
            throw new ArgumentException($"the model's input has a fixed batch of {dims[0]}, which does not divide the {calibration.Images} calibration samples");
        return dims[0];
    }
}
