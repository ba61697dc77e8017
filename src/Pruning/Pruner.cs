using OnnxSlim.Calibration;
using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning;

/// <summary>
/// The library's entry point: analyse → plan → rewrite → (reconstruct) → validate on ONNX Runtime → time.
/// Works in memory: the caller's model is not modified, and nothing is written to disk.
/// </summary>
public static class Pruner
{
    /// <summary>Most calibration samples held out for validation by default.</summary>
    private const int MaxHeldOut = 64;

    /// <summary>Below this many held-out samples the summary warns that its agreement says little (one sample: 0 or 100 % top-1).</summary>
    private const int FewHeldOut = 4;

    /// <summary>Beyond this gap between the cost model's and the re-measured reduction, the summary says so.</summary>
    private const double MeasuredVsPlannedTolerance = 0.02;

    private const int RandomBatch = 4;

    /// <summary>Samples per ONNX Runtime run when comparing outputs: bounds the runtime's intermediates on large inputs.</summary>
    private const int ValidationBatch = 4;

    /// <summary>
    /// Samples per run of the held-out comparison beside the reconstruction: one, so that ONNX Runtime's buffers for it stay
    /// small while the reconstruction's peak may come (PP-OCRv4 det at 640²: four pages were 0.2 GB more at its peak).
    /// </summary>
    private const int BesideBatch = 1;

    /// <summary>Prunes a copy of <paramref name="model"/>.</summary>
    /// <exception cref="ArgumentException">An option has a bad value.</exception>
    /// <exception cref="PruningException">The model or plan cannot be pruned as asked (nothing prunable, a plan that does not match...).</exception>
    /// <exception cref="ValidationFailedException">The pruned model does not run, or gives non-finite outputs.</exception>
    public static PruneResult Prune(OnnxModel model, PruneOptions options) => Prune(model, options, handedOver: false);

    /// <summary>
    /// Prunes <paramref name="model"/> itself, which the caller hands over: on success it is the result's model; the caller
    /// reads it no more (after a failure it may only dispose of it). Where no later step reads the original weights (no
    /// calibration data, no timing, no latency target), no copy of the original is kept, so each weight the rewrite
    /// replaces is garbage at once. Why: with a copy, the original's weights stayed beside the pruned ones through the
    /// rewrite and the validation (VGG-16: 553 MB beside 371 MB).
    /// </summary>
    /// <exception cref="ArgumentException">An option has a bad value.</exception>
    /// <exception cref="PruningException">The model or plan cannot be pruned as asked.</exception>
    /// <exception cref="ValidationFailedException">The pruned model does not run, or gives non-finite outputs.</exception>
    public static PruneResult PruneInPlace(OnnxModel model, PruneOptions options) => Prune(model, options, handedOver: true);

    private static PruneResult Prune(OnnxModel model, PruneOptions options, bool handedOver)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Check();
        ModelChecks.Check(model);
        var stages = new StageClock(options.Progress, options.Log);

        // Message copies share the weights' bytes (immutable): the copies cost the graph structure, not the weights.
        OnnxModel? original = null;
        OnnxModel work;
        WeightFolds folds;
        // Folded before the copy, so the original the reconstruction and validation read is the same graph.
        if (handedOver)
        {
            work = model;
            if (work.HasExternalData) work.InlineExternalData();
            folds = WeightFolds.Apply(work);
            if (ReadsOriginal(options)) original = work.Clone();
        }
        else
        {
            original = model.Clone();
            if (original.HasExternalData) original.InlineExternalData();
            folds = WeightFolds.Apply(original);
            work = original.Clone();
        }
        try
        {
            var summary = Run(original, work, options, stages, out var planFile);
            summary.Notes.InsertRange(0, folds.Notes());
            return new PruneResult(work, planFile, summary);
        }
        catch
        {
            if (!handedOver) work.Dispose();
            throw;
        }
        finally
        {
            original?.Dispose();
        }
    }

    /// <summary>Whether a step after the analysis reads the original model: the latency model and its checks, the reconstruction, the timing.</summary>
    private static bool ReadsOriginal(PruneOptions options) =>
        options.Calibration is not null || options.Target == BudgetTarget.Latency || (options.Validate && options.Time);

    /// <param name="original">Null when no step reads it (<see cref="ReadsOriginal"/>).</param>
    private static PruneSummary Run(OnnxModel? original, OnnxModel work, PruneOptions options, StageClock stages, out PlanFile planFile)
    {
        long originalProtoBytes = (original ?? work).ProtoBytes;
        OnnxModel Original() => original ?? throw new InvalidOperationException("the original model was not kept (see ReadsOriginal)");
        // The serialised original, only while a step needs it (latency, timing): a large model's bytes are as large as its weights.
        byte[]? serialised = null;
        byte[] OriginalBytes() => serialised ??= Original().ToBytes();
        var calibration = options.Calibration is null ? null : Split(options.Calibration, options.HeldOutSamples);
        // The original's outputs for validation, run right after the shape probe (see ShapeProbe.Run); on held-out calibration
        // samples only their names and inputs are kept then, and they run beside the reconstruction (see HeldOutReference).
        Reference? reference = null;
        // A detector's outputs after NMS: validation compares the values before that part instead (see DataDependentPart).
        var part = DataDependentPart.Find(work.Graph);
        long analysisStart = 0;
        void KeepReference(ProbedModel probed)
        {
            options.Log?.Invoke($"shape probe on ONNX Runtime: {System.Diagnostics.Stopwatch.GetElapsedTime(analysisStart).TotalSeconds:0.00} s " +
                $"({probed.ValuesInferred} values inferred, {probed.ValuesRun} read from a run)");
            if (!options.Validate) return;
            if (calibration?.HeldOut is { } heldOut)
            {
                reference = new Reference(heldOut, [], part?.Compared ?? probed.OutputNames, false, part);
                return;
            }
            var inputs = InputGenerator.Generate(probed.Inputs, RandomInputShapes(probed.Inputs, options), options.Seed);
            bool probeRun;
            reference = part is null
                ? new Reference(inputs, probed.RunInBatches(inputs, ValidationBatch, out probeRun), probed.OutputNames, probeRun, null)
                : new Reference(inputs, probed.RunValues(inputs, ValidationBatch, part.Compared, out probeRun), part.Compared, probeRun, part);
        }
        analysisStart = System.Diagnostics.Stopwatch.GetTimestamp();
        var analysis = stages.Run("analyse graph (shapes, channel groups, costs)", () => ModelAnalysis.Run(work, options.InputShapes, KeepReference,
            options.Validate ? part?.Compared : null));
        // Bad calibration values are refused before any planning, whether or not the analysis read the held-out samples.
        options.Calibration?.WaitForCheck();
        bool heapKept = options.KeepNativeMemory && calibration is not null && KeepNativeHeap(options, LargestValueBytes(analysis));
        LatencyTarget? latency = null;
        LatencyModelFigures? latencyFigures = null;
        using var keepTimer = options.Target == BudgetTarget.Latency && options.Plan is null && options.LatencyChecks > 0
            ? new KeepTimer(Original(), OriginalBytes(), analysis.Shapes, options) : null;
        if (options.Target == BudgetTarget.Latency && options.Plan is null)
        {
            string threads = options.LatencyThreads == 0 ? "all cores" : options.LatencyThreads == 1 ? "1 thread" : $"{options.LatencyThreads} threads";
            var model = stages.Run($"measure latency model (ONNX Runtime {options.Provider.ToString().ToLowerInvariant()}, {threads})",
                step => MeasureLatency(analysis, OriginalBytes(), options, step, out latencyFigures));
            latency = new LatencyTarget(model, options.LatencyChecks, keepTimer is null ? null : keepTimer.Ratio);
        }
        // The ranking's pass over the original model also records what the reconstruction will read from it.
        using var recording = calibration is not null && options.Refit && options.Plan is null
            ? new TargetRecording(calibration.Fit.Images, ReconstructionOptions(options, null)) : null;
        var plan = stages.Run(options.Refit ? "plan (spectra, calibrated ranking, allocation, selection)"
            : latency is { MaxChecks: > 0 } ? "plan (spectra, allocation checked on ONNX Runtime, selection)" : "plan (spectra, allocation, selection)", () => options.Plan is null
            ? Planner.Plan(analysis, options, calibration?.Fit, latency, recording)
            : Planner.FromFile(analysis, options.Plan));
        if (latencyFigures is not null && plan.Allocation is { } planned)
        {
            latencyFigures.PredictedReduction = planned.LatencyReduction;
            latencyFigures.Checks = [.. latency!.Checks];
            foreach (var c in latency.Checks)
                options.Log?.Invoke($"latency check: solved for {c.Requested:P1}, model predicts {c.PredictedReduction:P1}, measured {c.MeasuredReduction:P1}");
            if (options.Log is { } log)
                foreach (var layer in latency.Model.Layers.OrderByDescending(l => l.FullMilliseconds).Take(25))
                    log($"  predicted {layer.Name}: {layer.FullMilliseconds:0.000} → {layer.At(planned.Keep):0.000} ms" +
                        (layer.Output is { } o ? $", out {o.At([.. analysis.Groups.Select(g => g.Width)]):0} → {o.At(planned.Keep):0}" : "") +
                        (layer.Input is { } i ? $", in {i.At([.. analysis.Groups.Select(g => g.Width)]):0} → {i.At(planned.Keep):0}" : ""));
        }
        planFile = Planner.ToFile(analysis, plan, options);
        CollectBetweenStages();
        long macsBefore = analysis.Cost.Macs, paramsBefore = analysis.Cost.Params;

        // The rewrite edits the work graph's nodes in place; pair them with the original's now, while the two
        // graphs still list the same nodes in the same order.
        var originalOf = new Dictionary<Node, Node>();
        if (calibration is not null)
            foreach (var (w, o) in work.Graph.Nodes.Zip(Original().Graph.Nodes)) originalOf[w] = o;
        var rewrite = stages.Run("rewrite graph", () => ChannelPruner.Apply(work, analysis.Groups, plan.KeepByGroup,
            options.RewriteOptions with { PlannedGrams = plan.KeptGrams }));
        CollectBetweenStages();
        if (heapKept) ReturnNativeHeap(options);

        var summary = new PruneSummary
        {
            Target = options.Target.ToString().ToLowerInvariant(),
            Cr = options.Ratio,
            Criterion = options.Plan is null ? options.EffectiveCriterion.ToString().ToLowerInvariant() : "plan file",
            Allocation = options.Plan is null ? options.Allocation.ToString().ToLowerInvariant() : "plan file",
            Provider = options.Provider.ToString().ToLowerInvariant(),
            Groups = GroupFigures(analysis, plan),
            BudgetNote = BudgetNote(plan),
            Compensation = $"{CompensationName(options.Compensation)}: {rewrite.Merged} merged, {rewrite.Folded} folded, {rewrite.BiasCorrected} bias-corrected",
            Notes = [.. plan.Notes, .. rewrite.Notes],
            LatencyModel = latencyFigures,
        };

        if (calibration is not null)
        {
            var heldOut = calibration.HeldOut;
            // The original's outputs on the held-out samples, then the sliced model's agreement with them, run beside the
            // reconstruction on one ONNX Runtime thread: it leaves part of a core idle between its passes and fits (ResNet-50:
            // 1.75 of 2 on average), and the sliced model's run needs only the session made here, before any weight changes.
            // Its session is released as soon as it has run: held through the reconstruction, ONNX Runtime's buffers for it
            // were in ResNet-50's peak (1,024 images: 1.6 → 1.9 GB).
            var pending = reference is not null && heldOut is not null ? PendingComparison.Start(reference, work, options, beside: true) : null;
            // A thread of its own (seconds of runs), not one of the pool's that the reconstruction's parallel loops draw on.
            var slicedRun = pending is null ? null : Task.Factory.StartNew(() =>
            {
                using (pending)
                {
                    reference = HeldOutReference(Original(), reference!);
                    return pending.Finish(reference, out _);
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            ReconstructionReport report;
            try
            {
                report = stages.Run("reconstruct from calibration data", step =>
                    Reconstruction.Run(Original(), work, RefitLayer.FromGroups(analysis.Groups, plan.KeepByGroup, work.Graph, n => originalOf.GetValueOrDefault(n)), calibration.Fit,
                        ReconstructionOptions(options, step), recording));
            }
            catch
            {
                // Its session must not be left running on the way out.
                try { slicedRun?.Wait(); } catch (AggregateException) { }
                throw;
            }
            var agreementBefore = slicedRun?.GetAwaiter().GetResult();
            summary.Recovery = $"calibration reconstruction ({report.FittedCount} layers on {report.Images} samples";
            summary.Recovery += report.SkippedLayers.Any() ? $", {report.SkippedLayers.Count()} left as pruned)" : ")";
            summary.Notes.AddRange(report.SkippedLayers.Take(3).Select(l => $"not re-fitted: {l.Name} ({l.Skipped})"));
            summary.StageDetails["reconstruct from calibration data"] =
                $"{report.Levels} levels, {report.RuntimeRuns} ONNX Runtime runs ({report.RuntimeSeconds:0.0} s), {report.Seconds - report.RuntimeSeconds:0.0} s sampling and solving";
            if (agreementBefore is not null)
                summary.AgreementBeforeRecovery = AgreementFigures.From(agreementBefore, part);
            // The fits' rows, targets and sums are garbage now, and the validation's ONNX Runtime run would grow the
            // process around them (PP-OCRv4 rec: its peak was at the validation's end).
            CollectBetweenStages();
        }
        else
        {
            summary.Warnings.Add("no calibration data: agreement on random inputs does not measure accuracy on real data, " +
                "and a trained model pruned without data can lose most of it; pass --calib with real samples");
        }
        if (options.Calibration is { } given) summary.Warnings.AddRange(given.Warnings);

        // The pruned model's shapes for its cost: read by the validation run when it feeds the probe's inputs, else probed.
        Dictionary<string, long[]>? slimShapes = null;
        if (options.Validate)
        {
            var inputs = calibration?.HeldOut;
            var agreement = stages.Run("validate on ONNX Runtime", () => Compare(reference!, work, options, out slimShapes));
            if (!agreement.AllFinite)
                throw new ValidationFailedException("validation failed: the pruned model's outputs contain NaN or Inf; nothing written");
            summary.Agreement = AgreementFigures.From(agreement, part);
            summary.AgreementInputs = inputs is not null
                ? $"{inputs[0].Shape[0]} held-out calibration sample{(inputs[0].Shape[0] == 1 ? "" : "s")}, not used for ranking or fitting"
                : calibration is not null ? "seeded random inputs (no calibration sample was held out)" : "seeded random inputs";
            summary.AgreementOnRealData = inputs is not null;
            if (inputs is not null && inputs[0].Shape[0] < FewHeldOut)
                summary.Warnings.Add($"the agreement is read on {summary.AgreementInputs.Split(',')[0]} only, too few to stand for accuracy: " +
                    $"give {FewHeldOut * 8} or more calibration samples, or hold out more with --holdout");
            if (options.MinAgreement is double min)
            {
                if (agreement.Compared == 0)
                    throw new ValidationFailedException($"validation failed: agreement could not be measured on {summary.AgreementInputs}: " +
                        $"no {(part is null ? "output" : "value before the data-dependent part")} has the same shape in both models ({string.Join(", ", agreement.NotCompared)}); nothing written");
                (string metric, double value) = agreement.Top1Agreement is double top1
                    ? (agreement.Top1PerPosition ? "top-1 agreement per position" : "top-1 agreement", top1) : ("output cosine", agreement.Cosine);
                if (value < min)
                    throw new ValidationFailedException($"validation failed: {metric} {value:0.0000} on {summary.AgreementInputs} is below the minimum {min}; nothing written");
            }
        }
        else if (options.MinAgreement is not null)
        {
            throw new ArgumentException("a minimum agreement needs validation", nameof(options.MinAgreement));
        }

        var prunedShapes = PrunedShapesFor(work, analysis, plan, part, slimShapes, options, out bool partNotRun);
        if (partNotRun)
            summary.Notes.Add($"the pruned model's part after {string.Join(", ", part!.SourceOps)} (a detector's kept boxes and the heads that run on them) was not run: " +
                "its costs are counted at the sizes the original had on the seeded input");
        var slimCost = ModelCost.Compute(work.Graph, DataDependentSizes.AtOriginal(prunedShapes, analysis.Shapes, out var moved));
        if (moved.Count > 0)
        {
            var (value, own, orig) = moved[0];
            summary.Notes.Add($"{moved.Count} value{(moved.Count == 1 ? " has" : "s have")} a data-dependent size on the seeded input " +
                $"(e.g. '{value}': {own} in the pruned model, {orig} in the original, as boxes after NMS): the pruned model's costs are counted " +
                $"at the original's sizes; at its own it costs {ModelCost.Compute(work.Graph, prunedShapes).Macs:N0} MACs");
        }
        summary.Before = new ModelFigures { Params = paramsBefore, Macs = macsBefore, FileBytes = originalProtoBytes };
        summary.After = new ModelFigures { Params = slimCost.Params, Macs = slimCost.Macs, FileBytes = work.ProtoBytes };
        summary.AchievedReduction = options.Target switch
        {
            BudgetTarget.Params => 1 - (double)slimCost.Params / paramsBefore,
            BudgetTarget.Filters => plan.Allocation?.FiltersReduction ?? 0,
            BudgetTarget.Latency => plan.Allocation?.LatencyReduction ?? double.NaN,
            _ => 1 - (double)slimCost.Macs / macsBefore,
        };

        if (plan.Allocation is { } alloc && options.Target is not (BudgetTarget.Filters or BudgetTarget.Latency) &&
            Math.Abs(summary.AchievedReduction - alloc.AchievedReduction) > MeasuredVsPlannedTolerance)
            summary.Notes.Add($"measured {summary.Target} reduction {summary.AchievedReduction:P1} differs from the plan's {alloc.AchievedReduction:P1}: " +
                "some layer sizes depend on the data (e.g. detection heads after NMS), or were not known to the cost model");

        if (options.Validate && options.Time) stages.Run("time on ONNX Runtime", () => Time(OriginalBytes(), work.ToBytes(), summary, options));
        if (options.Target == BudgetTarget.Latency && summary.Before.LatencyBatch1Ms is double before && summary.After.LatencyBatch1Ms is double after)
        {
            // The latency target is met when the pruned model measures faster by the ratio asked, not when the model says so.
            summary.AchievedReduction = 1 - after / before;
            if (latencyFigures is not null)
            {
                latencyFigures.MeasuredReduction = summary.AchievedReduction;
                if (Math.Abs(latencyFigures.MeasuredReduction.Value - latencyFigures.PredictedReduction) > MeasuredVsPlannedTolerance)
                    summary.Notes.Add($"measured latency reduction {latencyFigures.MeasuredReduction:P1} differs from the predicted {latencyFigures.PredictedReduction:P1} " +
                        "(timing noise on a busy machine, or costs the per-layer model does not see)");
            }
        }
        summary.Threshold = plan.Allocation?.Threshold;
        summary.StageSeconds = new Dictionary<string, double>(stages.Seconds);
        return summary;
    }

    /// <summary>
    /// A sample's largest value in bytes (float32), above which <see cref="PruneOptions.KeepNativeMemory"/> applies: a batch of such
    /// maps is over glibc's 32 MiB mapping threshold, so each session maps and faults it in afresh (PP-OCRv4 det at 640²:
    /// 12.5 MiB; ResNet-50: 64×112×112, 3.1 MiB; PP-OCRv4 rec at 48×320: 64×24×160, 0.9 MiB, left alone).
    /// </summary>
    public const long LargeValueBytes = 2L << 20;

    /// <summary>Keeps native memory (<see cref="PruneOptions.KeepNativeMemory"/>) when <paramref name="largest"/> bytes a sample reach <see cref="LargeValueBytes"/>.</summary>
    private static bool KeepNativeHeap(PruneOptions options, long largest)
    {
        if (largest < LargeValueBytes || !NativeHeap.KeepFreedMemory()) return false;
        options.Log?.Invoke($"native heap: memory freed by ONNX Runtime's sessions kept for the next ones (largest value {largest / 1048576.0:0.0} MiB a sample)");
        return true;
    }

    /// <summary>
    /// Hands the kept heap back once the plan's passes over the original model, the widest, are over: the reconstruction's
    /// passes over the pruned model need far less, and what they would not reuse stayed resident under the reconstruction's
    /// own peak (ResNet-50, 256 images: 422 MiB handed back, peak 1,985 → 1,646 MiB; PP-OCRv4 det −50 %: 887–903 → 783–792 MiB;
    /// the same bytes and time).
    /// </summary>
    private static void ReturnNativeHeap(PruneOptions options)
    {
        long before = Environment.WorkingSet;
        if (!NativeHeap.ReturnFreedMemory()) return;
        options.Log?.Invoke($"native heap: {Math.Max(0, before - Environment.WorkingSet) >> 20} MiB handed back before the reconstruction, resident {Environment.WorkingSet >> 20} MiB");
    }

    private static long LargestValueBytes(ModelAnalysis analysis) =>
        analysis.Shapes.Values.Select(shape => shape.Skip(1).Aggregate(1L, (a, d) => a * Math.Max(d, 1)) * sizeof(float)).DefaultIfEmpty(0).Max();

    /// <summary>
    /// A compacting collection between stages that also hands the freed memory back to the system (aggressive mode). Why:
    /// the plan's work buffers and the rewrite's float copies are garbage by then, and the next stage would otherwise
    /// grow the process around them (VGG-16 --cr 0.5: peak 1539 → 1388 MiB with one after the plan and one after the
    /// rewrite; each takes milliseconds); and the GC otherwise decommits what it freed only gradually, while ONNX
    /// Runtime's native allocations (the validation's activations, ~350 MiB for VGG-16) cannot use it: resident at the
    /// validation's end 1305 → 531 MiB.
    /// </summary>
    private static void CollectBetweenStages()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    private static ReconstructionOptions ReconstructionOptions(PruneOptions options, Action<int, int>? progress) =>
        new() { Provider = options.Provider, Progress = progress, Log = options.Log, PassLog = options.Log };

    private static string CompensationName(CompensationMode mode) => mode switch
    {
        CompensationMode.DataFree => "data-free",
        _ => mode.ToString().ToLowerInvariant(),
    };

    /// <summary>The original model's outputs on the validation inputs, by output name.</summary>
    /// <summary>
    /// The original model's outputs on real samples must be finite, or no agreement can be measured: a float16 model
    /// overflowing (past ±65504) on samples scaled otherwise than it expects is the usual cause, and the user's to fix.
    /// </summary>
    private static void RequireFinite(IReadOnlyList<NamedTensor> outputs)
    {
        foreach (var output in outputs.Where(o => NamedTensor.IsFloating(o.ElementType)))
        {
            var values = output.AsFloats();
            int bad = Array.FindIndex(values, v => !float.IsFinite(v));
            if (bad < 0) continue;
            long perSample = output.Shape.Length > 0 && output.Shape[0] > 0 ? values.Length / output.Shape[0] : values.Length;
            string hint = output.ElementType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16
                ? " (float16 overflows past ±65504: are the samples scaled as the model expects?)" : "";
            throw new ArgumentException($"the original model gives {FiniteValues.Describe(values[bad])} in output '{output.Name}' on held-out calibration sample {bad / Math.Max(perSample, 1)}{hint}");
        }
    }

    /// <param name="ProbeInputs">Whether <paramref name="Outputs"/> are the shape probe's run, on its inputs (see <see cref="ProbedModel"/>).</param>
    /// <param name="Part">When set, <paramref name="Outputs"/> are the values before the data-dependent part (<see cref="DataDependentPart.Compared"/>), not the model's outputs.</param>
    private sealed record Reference(IReadOnlyList<NamedTensor> Inputs, IReadOnlyList<NamedTensor> Outputs, IReadOnlyList<string> OutputNames, bool ProbeInputs,
        DataDependentPart? Part);

    /// <summary>Runs the pruned model (one-off session over its own weights) on the reference inputs and compares.</summary>
    /// <param name="shapes">On the probe's inputs, the pruned model's shapes of the values its cost reads (<see cref="ModelAnalysis.CostValues"/>),
    /// from this same run: a second probe of a detector was another full run of seconds. Null otherwise.</param>
    private static OutputComparison Compare(Reference reference, OnnxModel pruned, PruneOptions options, out Dictionary<string, long[]>? shapes)
    {
        using var comparison = PendingComparison.Start(reference, pruned, options, beside: false);
        return comparison.Finish(reference, out shapes);
    }

    /// <summary>
    /// <paramref name="reference"/> (held-out calibration samples, its outputs not run yet) with the original's outputs, on a
    /// one-off session of one ONNX Runtime thread (it runs beside the reconstruction), which must be finite.
    /// </summary>
    private static Reference HeldOutReference(OnnxModel original, Reference reference)
    {
        using var runner = reference.Part is null ? new ModelRunner(original, intraOpThreads: 1)
            : ModelRunner.ForValues(original, reference.OutputNames, intraOpThreads: 1);
        var outputs = runner.RunInBatches(reference.Inputs, BesideBatch, reference.OutputNames);
        RequireFinite(outputs);
        return reference with { Outputs = outputs };
    }

    /// <summary>
    /// A comparison whose session is made from the pruned model as it is now, and whose run may come later on another thread
    /// while the model changes: the session reads the weights' bytes of this moment (protobuf's byte strings are immutable,
    /// and a re-fit replaces a tensor's rather than writing into them). It needs the reference's names when made, its
    /// outputs only when run.
    /// </summary>
    private sealed class PendingComparison : IDisposable
    {
        private readonly PruneOptions _options;
        private readonly ModelRunner _runner;
        private readonly List<string>? _partValues;
        private readonly double _sessionSeconds;
        private readonly int _batch, _workers;

        private readonly IReadOnlyDictionary<string, long> _classAxes;

        private PendingComparison(PruneOptions options, ModelRunner runner, List<string>? partValues, double sessionSeconds, int batch, int workers,
            IReadOnlyDictionary<string, long> classAxes) =>
            (_options, _runner, _partValues, _sessionSeconds, _batch, _workers, _classAxes) = (options, runner, partValues, sessionSeconds, batch, workers, classAxes);

        /// <param name="beside">Whether it runs beside other work: on one ONNX Runtime thread, <see cref="BesideBatch"/> samples a run.</param>
        public static PendingComparison Start(Reference reference, OnnxModel pruned, PruneOptions options, bool beside)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            var costValues = reference.ProbeInputs ? ModelAnalysis.CostValues(pruned.Graph) : null;
            // Of the values before the data-dependent part, those the pruned graph still computes (a missing one is reported as such).
            var partValues = reference.Part is null ? null : reference.OutputNames.Where(v => pruned.Graph.Producer(v) is not null).ToList();
            // Held-out samples compared alone run their batches side by side, the same samples in flight as one batch of
            // ValidationBatch, the cores shared among them: on the session's whole pool one batch kept about one core of two
            // busy (PP-OCRv4 rec: 1.0 of 2, 0.9 s; two batches of 2 on one thread each, 0.44 s).
            int workers = !beside && partValues is null && !reference.ProbeInputs && options.Provider == Provider.Cpu
                ? Math.Clamp(Environment.ProcessorCount, 1, ValidationBatch) : 1;
            int intraOpThreads = beside ? 1 : workers > 1 ? Math.Max(1, Environment.ProcessorCount / workers) : 0;
            ModelRunner runner;
            try
            {
                runner = partValues is null ? new ModelRunner(pruned, options.Provider, costValues, intraOpThreads: intraOpThreads)
                    : partValues.Count == 0 ? throw new ValidationFailedException("validation failed: the pruned model computes none of the values compared before its data-dependent part; nothing written")
                    : ModelRunner.ForValues(pruned, partValues, options.Provider, costValues, intraOpThreads);
            }
            catch (RuntimeUnavailableException e) { throw new ValidationFailedException($"validation failed: {e.Message}; nothing written", e); }
            // The outputs' producers are the original's (a Softmax has no channels to prune).
            return new PendingComparison(options, runner, partValues, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds,
                beside ? BesideBatch : ValidationBatch / workers, workers, ClassAxes.Find(pruned));
        }

        public OutputComparison Finish(Reference reference, out Dictionary<string, long[]>? shapes)
        {
            shapes = null;
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            IReadOnlyList<NamedTensor> outputs = [];
            OutputComparison? batched = null;
            try
            {
                if (reference.ProbeInputs)
                {
                    outputs = _runner.RunWithShapes(reference.Inputs, _partValues ?? reference.OutputNames, out var probed);
                    foreach (var input in reference.Inputs) probed.TryAdd(input.Name, input.Shape);
                    shapes = probed;
                }
                // A whole model's outputs are compared a batch at a time as they come rather than stacked first (PP-OCRv4
                // rec's 32 held-out lines: 34 MB of fresh memory a comparison, touched page by page).
                else if (_partValues is null) batched = CompareInBatches(reference);
                if (batched is null && !reference.ProbeInputs)
                    outputs = _partValues is null ? _runner.Run(reference.Inputs, reference.OutputNames) : _runner.RunInBatches(reference.Inputs, _batch, _partValues);
            }
            catch (RuntimeUnavailableException e) { throw new ValidationFailedException($"validation failed: {e.Message}; nothing written", e); }
            _options.Log?.Invoke($"pruned model{(_partValues is null ? "" : $" up to {_partValues.Count} values before its data-dependent part")} on ONNX Runtime: " +
                $"session {_sessionSeconds:0.00} s, run {System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds:0.00} s");
            if (_partValues is not null && _options.Log is { } log)
                foreach (var r in reference.Outputs)
                {
                    var each = OutputComparison.Compare([r], outputs, top1: false);
                    log($"  compared '{r.Name}' {NamedTensor.FormatShape(r.Shape)}: " + (each.Compared == 0 ? string.Join(", ", each.NotCompared)
                        : FormattableString.Invariant($"cosine {each.Cosine:F5}, max abs error {each.MaxAbsError:G4}")));
                }
            // Top-1 is about a classifier's outputs, not about intermediate maps.
            return batched ?? OutputComparison.Compare(reference.Outputs, outputs, top1: reference.Part is null, _classAxes);
        }

        /// <summary>The comparison run a batch at a time; null when the samples run whole or an output is not batch-major.</summary>
        private OutputComparison? CompareInBatches(Reference reference)
        {
            var inputs = reference.Inputs;
            if (ModelRunner.RunsWhole(_runner.Inputs, inputs, _batch)) return null;
            var comparison = new BatchedComparison(reference.Outputs, inputs[0].Shape[0], top1: reference.Part is null, _classAxes);
            bool batchMajor = true;
            _runner.ForEachBatch(inputs, _batch, reference.OutputNames, (first, count, part) => batchMajor = comparison.Add(first, count, part), _workers);
            return batchMajor ? comparison.Result() : null;
        }

        public void Dispose() => _runner.Dispose();
    }

    /// <summary>
    /// The pruned model's shapes of the values its cost reads. Without a data-dependent part: <paramref name="fromValidation"/>
    /// (the validation run's, on the probe's inputs) or a probe of the whole pruned model, as before. With one: the run of
    /// the part before it (validation's, or a probe of that part) and, for the rest, the original's shapes at the kept
    /// channels (<see cref="PrunedShapes"/>): its sizes at the original's box counts, which is what the cost counts anyway
    /// (<see cref="DataDependentSizes"/>), without running a pruned detector's heads on another number of boxes.
    /// Where the shapes worked out disagree with the ones run, the whole pruned model is probed instead.
    /// </summary>
    /// <param name="partNotRun">Whether the data-dependent part's shapes were worked out rather than run.</param>
    private static Dictionary<string, long[]> PrunedShapesFor(OnnxModel work, ModelAnalysis analysis, KeepPlan plan, DataDependentPart? part,
        Dictionary<string, long[]>? fromValidation, PruneOptions options, out bool partNotRun)
    {
        partNotRun = false;
        if (part is null) return fromValidation ?? ModelAnalysis.ProbeShapes(work, options.InputShapes);
        var values = part.Compared.Where(v => work.Graph.Producer(v) is not null).ToList();
        var derived = PrunedShapes.Derive(analysis.Shapes, analysis.Groups, plan.KeepByGroup);
        if (values.Count == 0 || derived is null) return ModelAnalysis.ProbeShapes(work, options.InputShapes);
        var run = fromValidation ?? ProbePart(work, values, options);
        foreach (var (value, shape) in run)
        {
            if (!derived.TryGetValue(value, out var expected) || expected.AsSpan().SequenceEqual(shape)) continue;
            options.Log?.Invoke($"pruned shapes: '{value}' is {NamedTensor.FormatShape(shape)}, the kept channels say {NamedTensor.FormatShape(expected)}: probing the whole pruned model");
            return ModelAnalysis.ProbeShapes(work, options.InputShapes);
        }
        foreach (var (value, shape) in run) derived[value] = shape;
        partNotRun = true;
        return derived;
    }

    /// <summary>Shapes of the cost's values in the part of the pruned model that computes <paramref name="values"/>, on the probe's seeded inputs.</summary>
    private static Dictionary<string, long[]> ProbePart(OnnxModel work, IReadOnlyList<string> values, PruneOptions options)
    {
        using var runner = ModelRunner.ForValues(work, values, options.Provider, ModelAnalysis.CostValues(work.Graph));
        var shapes = InputShapes.Resolve(runner.Inputs, options.InputShapes);
        var probed = runner.OutputShapes(InputGenerator.Generate(runner.Inputs, shapes, seed: 0));
        foreach (var (name, shape) in shapes) probed.TryAdd(name, shape);
        return probed;
    }

    /// <summary>Batch 4 where the batch is dynamic, so top-1 agreement is read over several samples.</summary>
    private static Dictionary<string, long[]> RandomInputShapes(IReadOnlyDictionary<string, Microsoft.ML.OnnxRuntime.NodeMetadata> inputs, PruneOptions options)
    {
        try { return Runtime.InputShapes.Resolve(inputs, options.InputShapes, RandomBatch); }
        catch (ArgumentException) { return Runtime.InputShapes.Resolve(inputs, options.InputShapes); }
    }

    /// <summary>The latency model for this analysis: measured, or read from the cache when this model was measured before.</summary>
    private static LatencyModel MeasureLatency(ModelAnalysis analysis, byte[] model, PruneOptions options, Action<int, int> step, out LatencyModelFigures figures)
    {
        var cache = options.LatencyCacheFolder switch { null => LatencyCache.Default(), "" => null, var folder => new LatencyCache(folder) };
        string key = LatencyCache.Key(model, options.Provider, options.LatencyThreads, options.InputShapes);
        var measured = cache?.Load(key);
        bool cached = measured is not null;
        if (measured is null)
        {
            measured = LatencyMeasurement.Run(analysis, model, options, key, step);
            cache?.Save(measured);
        }
        var latency = LatencyModelBuilder.Build(analysis, measured);
        if (options.Log is { } log)
        {
            log($"latency model: {measured.RunMilliseconds:0.00} ms per run (median), kernels and overhead {latency.Milliseconds([.. analysis.Groups.Select(g => g.Width)]):0.00} ms, {latency.FixedMilliseconds:0.00} ms fixed, {latency.Layers.Count} layers that follow keep counts, step {latency.Step}");
            foreach (var layer in latency.Layers.OrderByDescending(l => l.FullMilliseconds).Take(12))
                log($"  {layer.Name}: {layer.FullMilliseconds:0.000} ms, groups {string.Join(",", layer.Groups.Distinct())}" +
                    (layer.OutputCurve is { } o ? $", out ratio at ½: {o.Ratio(o.FullWidth / 2):0.00}" : "") + (layer.InputCurve is { } i ? $", in ratio at ½: {i.Ratio(i.FullWidth / 2):0.00}" : ""));
        }
        figures = new LatencyModelFigures
        {
            Provider = options.Provider.ToString().ToLowerInvariant(),
            Threads = options.LatencyThreads,
            Step = options.RoundTo > 0 ? options.RoundTo : latency.Step,
            ModelMilliseconds = latency.Milliseconds([.. analysis.Groups.Select(g => g.Width)]),
            Layers = latency.Layers.Count,
            TimedAlone = measured.Layers.Count,
            NotTimed = measured.NotTimed,
            MeasureSeconds = measured.Seconds,
            Cached = cached,
        };
        return latency;
    }

    private static void Time(byte[] original, byte[] pruned, PruneSummary summary, PruneOptions options)
    {
        // The latency target is checked at the thread count its model was measured with.
        int threads = options.Target == BudgetTarget.Latency ? options.LatencyThreads : 0;
        using var timing = new Timing([original, pruned], options.Provider, options.InputShapes, threads);
        var b1 = timing.Measure(batch: 1, options.TimedRuns, warmup: 3);
        summary.Before.LatencyBatch1Ms = b1[0].MedianMs;
        summary.After.LatencyBatch1Ms = b1[1].MedianMs;
        if (options.Target == BudgetTarget.Latency) return; // batch 1 is what the target is about; batch 8 on one thread would take minutes
        try
        {
            var b8 = timing.Measure(batch: 8, Math.Max(3, options.TimedRuns / 2), warmup: 2);
            summary.Before.LatencyBatch8Ms = b8[0].MedianMs;
            summary.After.LatencyBatch8Ms = b8[1].MedianMs;
        }
        catch (ArgumentException)
        {
            // A fixed batch dimension: batch 8 does not apply.
        }
    }

    /// <summary>Samples that rank channels and fit layers, and the held-out ones that only validate (null when none).</summary>
    /// <param name="HeldOutSamples">Read into memory when first wanted (validation runs them whole, at most <see cref="MaxHeldOut"/>
    /// unless asked): not before the analysis, so that a value check still running beside it (<see cref="CalibrationData.WaitForCheck"/>)
    /// is not waited for at once.</param>
    private sealed record CalibrationSplit(CalibrationData Fit, Lazy<IReadOnlyList<NamedTensor>>? HeldOutSamples)
    {
        public IReadOnlyList<NamedTensor>? HeldOut => HeldOutSamples?.Value;
    }

    /// <summary>The last samples are held out: an eighth of them, at most 64, unless the options say how many.</summary>
    private static CalibrationSplit Split(CalibrationData all, int? heldOut)
    {
        int n = all.Images;
        int h = heldOut ?? Math.Min(MaxHeldOut, Math.Max(n >= 2 ? 1 : 0, n / 8));
        if (h == 0) return new CalibrationSplit(all, null);
        // The fitted samples share the caller's storage (a copy was another 540 MB for 1,024 ImageNet samples).
        return new CalibrationSplit(all.Range(0, n - h), new Lazy<IReadOnlyList<NamedTensor>>(() => all.Slice(n - h, h)));
    }

    private static List<GroupFigures> GroupFigures(ModelAnalysis analysis, KeepPlan plan) =>
        [.. analysis.Groups.Select(g => new GroupFigures
        {
            Id = g.Id,
            Producers = [.. g.Producers.Select(p => p.Id)],
            Channels = g.Width,
            Kept = plan.KeptOf(g.Id, g.Width),
            Frozen = g.Frozen || plan.Ignored.Contains(g.Id),
            Reason = g.Frozen ? g.Reason : plan.Ignored.Contains(g.Id) ? "ignored (--ignore)" : null,
            RankCapped = plan.RankCapped.Contains(g.Id),
            MacsShare = analysis.MacsShare(g),
            NormalizedSpectrum = plan.Spectra.TryGetValue(g.Id, out var sp) ? [.. Enumerable.Range(0, sp.StructuralRank).Select(sp.Normalized)] : null,
            AllocationCurve = plan.AllocationCurves.GetValueOrDefault(g.Id),
        })];

    private static string? BudgetNote(KeepPlan plan) => plan.Allocation is { Reachable: false } a
        ? $"the requested reduction is not reachable with these bounds; achieved {a.AchievedReduction:P1} (maximum {a.MaxReduction:P1})"
        : null;
}
