using System.Diagnostics;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// Calibration-based reconstruction: after pruning, re-fit every layer whose input channels were removed
/// so that it reproduces the original model's output of that layer (pre-activation, kept outputs only)
/// from the pruned model's own activations. Ridge least squares in float64 on sampled rows (im2col
/// patches for convs), bias fitted with the weights (the mean-shift correction), layers in dependency
/// order so each one sees the already re-fitted layers before it and errors do not accumulate.
/// </summary>
public static class Reconstruction
{
    /// <summary>
    /// Edits <paramref name="pruned"/>'s weights in place: re-fits <paramref name="layers"/> (the readers of
    /// the pruned groups, <see cref="RefitLayer.FromGroups"/>). <paramref name="calibrationInputs"/> are the
    /// model's inputs with the samples along the first axis. Layers that cannot be fitted are reported with a
    /// reason, never thrown.
    /// </summary>
    /// <param name="recording">The original model's values recorded during the calibrated ranking's pass over the same
    /// samples (see <see cref="TargetRecording"/>): the layers it covers need no pass over the original model here.</param>
    public static ReconstructionReport Run(OnnxModel original, OnnxModel pruned, IReadOnlyList<RefitLayer> layers,
        IReadOnlyList<NamedTensor> calibrationInputs, ReconstructionOptions? options = null, TargetRecording? recording = null) =>
        Run(original, pruned, layers, CalibrationData.FromTensors(calibrationInputs), options, recording);

    /// <inheritdoc cref="Run(OnnxModel, OnnxModel, IReadOnlyList{RefitLayer}, IReadOnlyList{NamedTensor}, ReconstructionOptions?, TargetRecording?)"/>
    public static ReconstructionReport Run(OnnxModel original, OnnxModel pruned, IReadOnlyList<RefitLayer> layers,
        CalibrationData calibration, ReconstructionOptions? options = null, TargetRecording? recording = null)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(pruned);
        ArgumentNullException.ThrowIfNull(layers);
        if (ReferenceEquals(original, pruned)) throw new ArgumentException("the original and the pruned model must be different objects");
        options ??= new ReconstructionOptions();
        ArgumentNullException.ThrowIfNull(calibration);
        var clock = Stopwatch.StartNew();

        var (units, skipped) = ConsumerDiscovery.Find(original, pruned, layers, options.PerPositionClassifier);
        units = [.. units.Select(u => u with { Chain = ChainFor(u, original, pruned, options) })];
        var fitted = new List<LayerReconstruction>(skipped);
        if (units.Count == 0) return new ReconstructionReport(fitted, calibration.Images, 0, 0, clock.Elapsed.TotalSeconds);
        using var engine = new ReconstructionEngine(original, pruned, calibration, options);

        var planned = engine.Plan(units, fitted, recording);
        var (levels, ordered) = ConsumerLevels.Assign(pruned.Graph, [.. planned.Select(p => p.Unit)]);
        var fits = ordered.Select((u, i) => new LayerFit(u, planned[i].Layout, options)).ToList();
        for (int i = 0; i < fits.Count; i++)
            if (levels[i] < 0) fitted.Add(Skip(fits[i].Unit, "its input depends on its own weight"));
        var byLevel = fits.Select((f, i) => (Fit: f, Level: levels[i])).Where(x => x.Level >= 0)
            .GroupBy(x => x.Level).OrderBy(g => g.Key).Select(g => g.Select(x => x.Fit).ToList()).ToList();

        // Every layer's targets, from the ranking's recording or one pass over the original model; they wait on disk until their level.
        engine.CollectTargets(byLevel.SelectMany(l => l).ToList(), recording);
        long collectedAt = GC.GetTotalMemory(false);
        int done = 0, total = byLevel.Sum(l => l.Count);
        options.Progress?.Invoke(0, total);
        // A level's targets are made while the previous level solves: they come from the original model alone (the recording
        // or the targets' file, through output chains fixed before the first fit), and the solves leave a core idle in their
        // serial parts (PP-OCRv4 rec: ~0.9 s of reading and gathering, one core, before each of 34 passes). Only small
        // levels' targets, which then live beside the solving level's rows: ResNet-50's layer4 convs have 160 MiB each.
        Task? nextTargets = null;
        try
        {
            for (int l = 0; l < byLevel.Count; l++)
            {
                var level = byLevel[l];
                if (nextTargets is null) engine.LoadTargets(level);
                else nextTargets.GetAwaiter().GetResult();
                engine.Accumulate(level, byLevel.Skip(l + 1).ToList());
                var following = l + 1 < byLevel.Count ? byLevel[l + 1] : null;
                nextTargets = following is not null && following.Sum(f => f.TargetBytes) <= AheadTargetBytes
                    ? Task.Run(() => engine.LoadTargets(following)) : null;
                foreach (var fit in level)
                {
                    LayerReconstruction result;
                    string aware = !fit.ReluAware ? "" : fit.Unit.Chain!.Gate is null ? ", ReLU-aware" : ", hard-gate-aware";
                    try { result = fit.Solve(pruned); }
                    catch (LayerSkippedException e) { result = Skip(fit.Unit, e.Message); }
                    fitted.Add(result);
                    options.Progress?.Invoke(++done, total);
                    if (aware.Length > 0) aware += $", {result.ReluSolves} re-solve{(result.ReluSolves == 1 ? "" : "s")}{(fit.Unit.Groups > 1 ? $" in {fit.Unit.Groups} groups" : "")}";
                    if (result.VarianceRestored > 0) aware += $", {result.VarianceRestored} of {result.Outputs} outputs spread";
                    options.Log?.Invoke(result.Fitted
                        ? $"{result.Name}: error {result.ErrorBefore:0.0000} → {result.ErrorAfter:0.0000} ({result.Rows} rows × {result.Features}, {result.Seconds:0.00} s{aware})"
                        : $"{result.Name}: skipped ({result.Skipped})");
                }
                pruned.Graph.Reindex();
                engine.Forget(byLevel.Skip(l + 1).ToList());
                // Each level leaves large arrays (targets, sums, stored rows) behind; the GC would let them pile up for
                // many levels before a full collection, so collect when they add up, to bound peak memory.
                if (GC.GetTotalMemory(false) - collectedAt > 256L << 20)
                {
                    GC.Collect();
                    collectedAt = GC.GetTotalMemory(false);
                }
            }
        }
        finally
        {
            // A failure above leaves the next level's targets being made: they must be done before the engine goes.
            try { nextTargets?.Wait(); }
            catch (AggregateException) { }
        }
        return new ReconstructionReport(Order(fitted, pruned.Graph), calibration.Images, byLevel.Count, engine.RuntimeRuns, clock.Elapsed.TotalSeconds)
        {
            RuntimeSeconds = engine.RuntimeSeconds,
        };
    }

    /// <summary>The most bytes of a level's targets made while the previous level solves (see <see cref="Run(OnnxModel, OnnxModel, IReadOnlyList{RefitLayer}, CalibrationData, ReconstructionOptions?, TargetRecording?)"/>).</summary>
    internal const long AheadTargetBytes = 64L << 20;

    /// <summary>The unit's output chain as far as the options use it: a skip needs residual targets, a Relu the ReLU-aware fit.</summary>
    private static OutputChain? ChainFor(ConsumerUnit unit, OnnxModel original, OnnxModel pruned, ReconstructionOptions options)
    {
        var node = unit.OriginalNodes[0];
        if (original.Graph.ResolveWeight(node.Input(1)) is not { } weight) return null;
        int outputs = (int)ConsumerDiscovery.OutputDim(node, weight.Tensor.Dims);
        if (OutputChain.Find(unit, original.Graph, pruned.Graph, outputs) is not { } chain) return null;
        if (!options.ResidualTargets) chain = chain.WithoutSkip();
        if (options.ReluIterations == 0) chain = chain with { ReluFollows = false };
        return chain.Useful ? chain : null;
    }

    internal static LayerReconstruction Skip(ConsumerUnit unit, string reason) =>
        new(unit.Name, unit.OpType, 0, 0, unit.Outputs, double.NaN, double.NaN, 0, reason);

    /// <summary>Layers in graph order of their first node, whatever order they were fitted or skipped in.</summary>
    private static List<LayerReconstruction> Order(List<LayerReconstruction> layers, Graph graph)
    {
        var position = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Nodes.Count; i++) position.TryAdd(graph.Nodes[i].Id, i);
        return [.. layers.OrderBy(l => position.GetValueOrDefault(l.Name.Split(", ")[0], int.MaxValue))];
    }
}
