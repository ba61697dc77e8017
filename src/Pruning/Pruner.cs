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

    /// <summary>Beyond this gap between the cost model's and the re-measured reduction, the summary says so.</summary>
    private const double MeasuredVsPlannedTolerance = 0.02;

    private const int RandomBatch = 4;

    /// <summary>Samples per ONNX Runtime run when comparing outputs: bounds the runtime's intermediates on large inputs.</summary>
    private const int ValidationBatch = 4;

    /// <summary>Prunes a copy of <paramref name="model"/>.</summary>
    /// <exception cref="ArgumentException">An option has a bad value.</exception>
    /// <exception cref="PruningException">The model or plan cannot be pruned as asked (nothing prunable, a plan that does not match...).</exception>
    /// <exception cref="ValidationFailedException">The pruned model does not run, or gives non-finite outputs.</exception>
    public static PruneResult Prune(OnnxModel model, PruneOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Check();
        ModelChecks.RefuseQuantized(model);
        var stages = new StageClock(options.Progress, options.Log);

        using var original = model.Clone();
        if (original.HasExternalData) original.InlineExternalData();
        byte[] originalBytes = original.ToBytes();
        var work = original.Clone();
        try
        {
            var summary = Run(original, originalBytes, work, options, stages, out var planFile);
            return new PruneResult(work, planFile, summary);
        }
        catch
        {
            work.Dispose();
            throw;
        }
    }

    private static PruneSummary Run(OnnxModel original, byte[] originalBytes, OnnxModel work, PruneOptions options, StageClock stages, out PlanFile planFile)
    {
        var analysis = stages.Run("analyse graph (shapes, channel groups, costs)", () => ModelAnalysis.Run(work, options.InputShapes));
        var calibration = options.Calibration is null ? null : Split(options.Calibration, options.HeldOutSamples);
        // The ranking's pass over the original model also records what the reconstruction will read from it.
        using var recording = calibration is not null && options.Refit && options.Plan is null
            ? new TargetRecording((int)calibration.Fit[0].Shape[0], ReconstructionOptions(options, null)) : null;
        var plan = stages.Run(options.Refit ? "plan (spectra, calibrated ranking, allocation, selection)" : "plan (spectra, allocation, selection)", () => options.Plan is null
            ? Planner.Plan(analysis, options, calibration?.Fit, recording)
            : Planner.FromFile(analysis, options.Plan));
        planFile = Planner.ToFile(analysis, plan, options);
        long macsBefore = analysis.Cost.Macs, paramsBefore = analysis.Cost.Params;

        // The rewrite edits the work graph's nodes in place; pair them with the original's now, while the two
        // graphs still list the same nodes in the same order.
        var originalOf = new Dictionary<object, Node>(ReferenceEqualityComparer.Instance);
        foreach (var (w, o) in work.Graph.Nodes.Zip(original.Graph.Nodes)) originalOf[w.Proto] = o;
        var rewrite = stages.Run("rewrite graph", () => ChannelPruner.Apply(work, analysis.Groups, plan.KeepByGroup, options.RewriteOptions));

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
        };

        // The original's outputs on the validation inputs, computed once for the comparisons before and after reconstruction.
        Reference? reference = null;
        Reference ReferenceOutputs() => reference ??= Outputs(originalBytes, calibration?.HeldOut, options);
        if (calibration is not null)
        {
            var heldOut = calibration.HeldOut;
            var agreementBefore = options.Validate && heldOut is not null ? Compare(ReferenceOutputs(), work.ToBytes(), options) : null;
            var report = stages.Run("reconstruct from calibration data", step =>
                Reconstruction.Run(original, work, RefitLayer.FromGroups(analysis.Groups, plan.KeepByGroup, work.Graph, n => originalOf.GetValueOrDefault(n.Proto)), calibration.Fit,
                    ReconstructionOptions(options, step), recording));
            summary.Recovery = $"calibration reconstruction ({report.FittedCount} layers on {report.Images} samples";
            summary.Recovery += report.SkippedLayers.Any() ? $", {report.SkippedLayers.Count()} left as pruned)" : ")";
            summary.Notes.AddRange(report.SkippedLayers.Take(3).Select(l => $"not re-fitted: {l.Name} ({l.Skipped})"));
            summary.StageDetails["reconstruct from calibration data"] =
                $"{report.Levels} levels, {report.RuntimeRuns} ONNX Runtime runs ({report.RuntimeSeconds:0.0} s), {report.Seconds - report.RuntimeSeconds:0.0} s sampling and solving";
            if (agreementBefore is not null) summary.AgreementBeforeRecovery = AgreementFigures.From(agreementBefore);
        }
        else
        {
            summary.Warnings.Add("no calibration data: agreement on random inputs does not measure accuracy on real data, " +
                "and a trained model pruned without data can lose most of it; pass --calib with real samples");
        }

        byte[] prunedBytes = work.ToBytes();
        if (options.Validate)
        {
            var inputs = calibration?.HeldOut;
            var agreement = stages.Run("validate on ONNX Runtime", () => Compare(ReferenceOutputs(), prunedBytes, options));
            if (!agreement.AllFinite)
                throw new ValidationFailedException("validation failed: the pruned model's outputs contain NaN or Inf; nothing written");
            summary.Agreement = AgreementFigures.From(agreement);
            summary.AgreementInputs = inputs is not null
                ? $"{inputs[0].Shape[0]} held-out calibration samples, not used for ranking or fitting"
                : calibration is not null ? "seeded random inputs (no calibration sample was held out)" : "seeded random inputs";
            summary.AgreementOnRealData = inputs is not null;
            if (options.MinAgreement is double min)
            {
                (string metric, double value) = agreement.Top1Agreement is double top1 ? ("top-1 agreement", top1) : ("output cosine", agreement.Cosine);
                if (value < min)
                    throw new ValidationFailedException($"validation failed: {metric} {value:0.0000} on {summary.AgreementInputs} is below the minimum {min}; nothing written");
            }
        }
        else if (options.MinAgreement is not null)
        {
            throw new ArgumentException("a minimum agreement needs validation", nameof(options.MinAgreement));
        }

        var slimCost = ModelCost.Compute(work.Graph, ModelAnalysis.ProbeShapes(work, options.InputShapes));
        summary.Before = new ModelFigures { Params = paramsBefore, Macs = macsBefore, FileBytes = originalBytes.LongLength };
        summary.After = new ModelFigures { Params = slimCost.Params, Macs = slimCost.Macs, FileBytes = prunedBytes.LongLength };
        summary.AchievedReduction = options.Target switch
        {
            BudgetTarget.Params => 1 - (double)slimCost.Params / paramsBefore,
            BudgetTarget.Filters => plan.Allocation?.FiltersReduction ?? 0,
            _ => 1 - (double)slimCost.Macs / macsBefore,
        };

        if (plan.Allocation is { } alloc && options.Target != BudgetTarget.Filters &&
            Math.Abs(summary.AchievedReduction - alloc.AchievedReduction) > MeasuredVsPlannedTolerance)
            summary.Notes.Add($"measured {summary.Target} reduction {summary.AchievedReduction:P1} differs from the plan's {alloc.AchievedReduction:P1}: " +
                "some layer sizes depend on the data (e.g. detection heads after NMS), or were not known to the cost model");

        if (options.Validate && options.Time) stages.Run("time on ONNX Runtime", () => Time(originalBytes, prunedBytes, summary, options));
        summary.Threshold = plan.Allocation?.Threshold;
        summary.StageSeconds = new Dictionary<string, double>(stages.Seconds);
        return summary;
    }

    private static ReconstructionOptions ReconstructionOptions(PruneOptions options, Action<int, int>? progress) =>
        new() { Provider = options.Provider, Progress = progress, Log = options.Log, PassLog = options.Log };

    private static string CompensationName(CompensationMode mode) => mode switch
    {
        CompensationMode.DataFree => "data-free",
        _ => mode.ToString().ToLowerInvariant(),
    };

    /// <summary>The validation inputs (held-out samples, else seeded random ones) and the original model's outputs on them.</summary>
    private sealed record Reference(IReadOnlyList<NamedTensor> Inputs, IReadOnlyList<NamedTensor> Outputs);

    private static Reference Outputs(byte[] original, IReadOnlyList<NamedTensor>? inputs, PruneOptions options)
    {
        // One run per batch: full graph optimisation would cost more than the runs themselves.
        using var a = new ModelRunner(original, options.Provider, optimize: false, spinning: false);
        inputs ??= InputGenerator.Generate(a.Inputs, RandomInputShapes(a, options), options.Seed);
        return new Reference(inputs, a.RunInBatches(inputs, ValidationBatch));
    }

    private static OutputComparison Compare(Reference reference, byte[] pruned, PruneOptions options)
    {
        ModelRunner b;
        try { b = new ModelRunner(pruned, options.Provider, optimize: false, spinning: false); }
        catch (RuntimeUnavailableException e) { throw new ValidationFailedException($"validation failed: {e.Message}; nothing written", e); }
        using (b)
        {
            IReadOnlyList<NamedTensor> outB;
            try { outB = b.RunInBatches(reference.Inputs, ValidationBatch); }
            catch (RuntimeUnavailableException e) { throw new ValidationFailedException($"validation failed: {e.Message}; nothing written", e); }
            return OutputComparison.Compare(reference.Outputs, outB);
        }
    }

    /// <summary>Batch 4 where the batch is dynamic, so top-1 agreement is read over several samples.</summary>
    private static Dictionary<string, long[]> RandomInputShapes(ModelRunner runner, PruneOptions options)
    {
        try { return Runtime.InputShapes.Resolve(runner.Inputs, options.InputShapes, RandomBatch); }
        catch (ArgumentException) { return Runtime.InputShapes.Resolve(runner.Inputs, options.InputShapes); }
    }

    private static void Time(byte[] original, byte[] pruned, PruneSummary summary, PruneOptions options)
    {
        using var timing = new Timing([original, pruned], options.Provider, options.InputShapes, threads: 0);
        var b1 = timing.Measure(batch: 1, options.TimedRuns, warmup: 3);
        summary.Before.LatencyBatch1Ms = b1[0].MedianMs;
        summary.After.LatencyBatch1Ms = b1[1].MedianMs;
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
    private sealed record CalibrationSplit(IReadOnlyList<NamedTensor> Fit, IReadOnlyList<NamedTensor>? HeldOut);

    /// <summary>The last samples are held out: a fifth of them, at most 64, unless the options say how many.</summary>
    private static CalibrationSplit Split(IReadOnlyList<NamedTensor> all, int? heldOut)
    {
        long n = all[0].Shape[0];
        long h = heldOut ?? Math.Min(MaxHeldOut, n / 5);
        if (h == 0) return new CalibrationSplit(all, null);
        return new CalibrationSplit([.. all.Select(t => t.Rows(0, n - h))], [.. all.Select(t => t.Rows(n - h, h))]);
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
            RankCapped = plan.Spectra.TryGetValue(g.Id, out var s) && s.IsRankCapped,
            MacsShare = analysis.MacsShare(g),
            NormalizedSpectrum = plan.Spectra.TryGetValue(g.Id, out var sp) ? [.. Enumerable.Range(0, sp.StructuralRank).Select(sp.Normalized)] : null,
        })];

    private static string? BudgetNote(KeepPlan plan) => plan.Allocation is { Reachable: false } a
        ? $"the requested reduction is not reachable with these bounds; achieved {a.AchievedReduction:P1} (maximum {a.MaxReduction:P1})"
        : null;
}
