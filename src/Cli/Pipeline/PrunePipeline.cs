using OnnxSlim.Cli.Planning;
using OnnxSlim.Cli.Reporting;
using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Runtime.Recovery;

namespace OnnxSlim.Cli.Pipeline;

/// <summary>analyse → plan → rewrite → (recover) → validate on ONNX Runtime → time → write → report.</summary>
public sealed class PrunePipeline(PruneRequest request, Stages stages)
{
    /// <summary>Calibration images used for validation when --calib is given (the rest only fit).</summary>
    private const int ValidationSamples = 64;

    /// <summary>Beyond this gap between the cost model's and the re-measured reduction, the summary says so.</summary>
    private const double MeasuredVsPlannedTolerance = 0.02;

    public PruneSummary Run()
    {
        request.Check();
        byte[] originalBytes = File.ReadAllBytes(request.ModelPath);
        using var original = stages.Run("load model", () => ModelFiles.Load(request.ModelPath));
        using var work = original.Clone();
        if (work.HasExternalData) work.InlineExternalData();

        var analysis = stages.Run("analyse graph (shapes, channel groups, costs)", () => ModelAnalysis.Run(work, request.Shapes));
        var calibration = request.Calib is null ? null : LoadCalibration(originalBytes, request.Calib);
        var plan = stages.Run(request.Refit ? "plan (spectra, calibrated ranking, allocation, selection)" : "plan (spectra, allocation, selection)", () => request.PlanIn is null
            ? Planner.Plan(analysis, request, calibration?.Fit)
            : Planner.FromFile(analysis, PlanFile.Read(request.PlanIn)));
        var planFile = Planner.ToFile(analysis, plan, request);
        var figures = GroupFigures(analysis, plan);
        long macsBefore = analysis.Cost.Macs, paramsBefore = analysis.Cost.Params;

        var rewrite = stages.Run("rewrite graph", () => ChannelPruner.Apply(work, analysis.Groups, plan.KeepByGroup, request.PruneOptions));

        var summary = new PruneSummary
        {
            Model = request.ModelPath,
            Output = request.OutputPath,
            Target = request.Target.ToString().ToLowerInvariant(),
            Cr = request.Cr,
            Criterion = request.PlanIn is null ? request.Criterion : "plan file",
            Allocation = request.PlanIn is null ? request.Allocation.ToString().ToLowerInvariant() : "plan file",
            Provider = request.Provider.ToString().ToLowerInvariant(),
            Groups = figures,
            BudgetNote = BudgetNote(plan),
            Compensation = $"{request.Compensation}: {rewrite.Merged} merged, {rewrite.Folded} folded, {rewrite.BiasCorrected} bias-corrected",
            Notes = [.. plan.Notes, .. rewrite.Notes],
        };

        if (calibration is not null)
        {
            var agreementBefore = request.Validate ? Compare(originalBytes, work.ToBytes(), calibration.Validation) : null;
            var report = stages.Run("reconstruct from calibration data", () =>
                Reconstruction.Run(original, work, KeptByProducer(analysis, plan), calibration.Fit, new ReconstructionOptions { Provider = request.Provider }));
            summary.Recovery = $"calibration reconstruction ({report.FittedCount} layers on {report.Images} images)";
            if (agreementBefore is not null) summary.AgreementBeforeRecovery = AgreementFigures.From(agreementBefore);
        }

        byte[] prunedBytes = work.ToBytes();
        if (request.Validate)
        {
            var inputs = calibration?.Validation;
            var agreement = stages.Run("validate on ONNX Runtime", () => Compare(originalBytes, prunedBytes, inputs));
            if (!agreement.AllFinite)
                throw new CliError("validation failed: the pruned model's outputs contain NaN or Inf; nothing written", ExitCodes.ValidationFailed);
            summary.Agreement = AgreementFigures.From(agreement);
            summary.AgreementInputs = inputs is null ? "seeded random inputs" : $"the last {inputs[0].Shape[0]} calibration samples (also used for fitting)";
        }

        var slimCost = ModelCost.Compute(work.Graph, ModelAnalysis.ProbeShapes(work, request.Shapes));
        summary.Before = new ModelFigures { Params = paramsBefore, Macs = macsBefore, FileBytes = originalBytes.LongLength };
        summary.After = new ModelFigures { Params = slimCost.Params, Macs = slimCost.Macs, FileBytes = prunedBytes.LongLength };
        summary.AchievedReduction = request.Target switch
        {
            Spectral.BudgetTarget.Params => 1 - (double)slimCost.Params / paramsBefore,
            Spectral.BudgetTarget.Filters => plan.Allocation?.FiltersReduction ?? 0,
            _ => 1 - (double)slimCost.Macs / macsBefore,
        };

        if (plan.Allocation is { } alloc && request.Target != Spectral.BudgetTarget.Filters &&
            Math.Abs(summary.AchievedReduction - alloc.AchievedReduction) > MeasuredVsPlannedTolerance)
            summary.Notes.Add($"measured {summary.Target} reduction {summary.AchievedReduction:P1} differs from the plan's {alloc.AchievedReduction:P1}: " +
                "some layer sizes depend on the data (e.g. detection heads after NMS), or were not known to the cost model");

        if (request.Validate && request.Bench) stages.Run("time on ONNX Runtime", () => Time(originalBytes, prunedBytes, summary));

        stages.Run("write output", () =>
        {
            work.Save(request.OutputPath);
            if (request.PlanOut is not null) planFile.Write(request.PlanOut);
        });
        summary.StageSeconds = new Dictionary<string, double>(stages.Seconds);
        if (request.Report is not null) ReportWriter.Write(request.Report, summary, plan.Allocation?.Threshold);
        return summary;
    }

    private OutputComparison Compare(byte[] original, byte[] pruned, IReadOnlyList<NamedTensor>? inputs)
    {
        // One run each: full graph optimisation would cost more than the run itself.
        using var a = new ModelRunner(original, request.Provider, optimize: false);
        ModelRunner b;
        try { b = new ModelRunner(pruned, request.Provider, optimize: false); }
        catch (RuntimeUnavailableException e) { throw new CliError($"validation failed: {e.Message}; nothing written", ExitCodes.ValidationFailed); }
        using (b)
        {
            inputs ??= InputGenerator.Generate(a.Inputs, RandomInputShapes(a), request.Seed);
            IReadOnlyList<NamedTensor> outB;
            try { outB = b.Run(inputs); }
            catch (RuntimeUnavailableException e) { throw new CliError($"validation failed: {e.Message}; nothing written", ExitCodes.ValidationFailed); }
            return OutputComparison.Compare(a.Run(inputs), outB);
        }
    }

    /// <summary>Batch 4 where the batch is dynamic, so top-1 agreement is read over several samples.</summary>
    private Dictionary<string, long[]> RandomInputShapes(ModelRunner runner)
    {
        try { return InputShapes.Resolve(runner.Inputs, request.Shapes, RandomBatch); }
        catch (ArgumentException) { return InputShapes.Resolve(runner.Inputs, request.Shapes); }
    }

    private const int RandomBatch = 4;

    private void Time(byte[] original, byte[] pruned, PruneSummary summary)
    {
        using var timing = new Timing([original, pruned], request.Provider, request.Shapes, threads: 0);
        var b1 = timing.Measure(batch: 1, request.Runs, warmup: 3);
        summary.Before.LatencyBatch1Ms = b1[0].MedianMs;
        summary.After.LatencyBatch1Ms = b1[1].MedianMs;
        try
        {
            var b8 = timing.Measure(batch: 8, Math.Max(3, request.Runs / 2), warmup: 2);
            summary.Before.LatencyBatch8Ms = b8[0].MedianMs;
            summary.After.LatencyBatch8Ms = b8[1].MedianMs;
        }
        catch (ArgumentException)
        {
            // A fixed batch dimension: batch 8 does not apply.
        }
    }

    private sealed record Calibration(IReadOnlyList<NamedTensor> Fit, IReadOnlyList<NamedTensor> Validation);

    /// <summary>All samples fit the reconstruction; the last few also serve as validation inputs.</summary>
    private Calibration LoadCalibration(byte[] modelBytes, string path)
    {
        using var runner = new ModelRunner(modelBytes, request.Provider);
        var all = Agreement.InputsFromFile(runner, path, int.MaxValue);
        long n = all[0].Shape[0];
        long v = Math.Min(ValidationSamples, n);
        return new Calibration(all, [.. all.Select(t => Rows(t, n - v, v))]);
    }

    private static NamedTensor Rows(NamedTensor t, long start, long count)
    {
        long per = t.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var shape = t.Shape.ToArray();
        shape[0] = count;
        var data = Array.CreateInstance(t.Data.GetType().GetElementType()!, count * per);
        Array.Copy(t.Data, start * per, data, 0, count * per);
        return t with { Shape = shape, Data = data };
    }

    private static Dictionary<string, int[]> KeptByProducer(ModelAnalysis analysis, KeepPlan plan)
    {
        var map = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var (id, keep) in plan.KeepByGroup)
            foreach (var producer in analysis.Groups[id].Producers)
                map[producer.Id] = keep;
        return map;
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
