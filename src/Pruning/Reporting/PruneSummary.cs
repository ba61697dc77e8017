using System.Text.Json.Serialization;

namespace OnnxSlim.Pruning;

/// <summary>Everything a prune run measured: what the summary table prints and the JSON/HTML reports hold.</summary>
public sealed class PruneSummary
{
    /// <summary>What the user must know before trusting the result (e.g. no calibration data).</summary>
    [JsonPropertyName("warnings")] public List<string> Warnings { get; set; } = [];
    [JsonPropertyName("model")] public string Model { get; set; } = "";
    [JsonPropertyName("output")] public string Output { get; set; } = "";
    /// <summary>The output's external data file, when its weights were written beside it.</summary>
    [JsonPropertyName("output_data")] public string? OutputData { get; set; }
    [JsonPropertyName("target")] public string Target { get; set; } = "macs";
    [JsonPropertyName("cr")] public double Cr { get; set; }
    [JsonPropertyName("criterion")] public string Criterion { get; set; } = "gem";
    [JsonPropertyName("allocation")] public string Allocation { get; set; } = "sliming";
    [JsonPropertyName("provider")] public string Provider { get; set; } = "cpu";
    [JsonPropertyName("before")] public ModelFigures Before { get; set; } = new();
    [JsonPropertyName("after")] public ModelFigures After { get; set; } = new();
    [JsonPropertyName("achieved_reduction")] public double AchievedReduction { get; set; }
    [JsonPropertyName("budget_note")] public string? BudgetNote { get; set; }
    [JsonPropertyName("agreement")] public AgreementFigures? Agreement { get; set; }
    [JsonPropertyName("agreement_before_recovery")] public AgreementFigures? AgreementBeforeRecovery { get; set; }
    [JsonPropertyName("recovery")] public string? Recovery { get; set; }
    [JsonPropertyName("compensation")] public string? Compensation { get; set; }
    [JsonPropertyName("notes")] public List<string> Notes { get; set; } = [];
    [JsonPropertyName("agreement_inputs")] public string AgreementInputs { get; set; } = "seeded random";
    /// <summary>Whether <see cref="Agreement"/> was measured on held-out real samples rather than random inputs.</summary>
    [JsonPropertyName("agreement_on_real_data")] public bool AgreementOnRealData { get; set; }
    /// <summary>The global threshold the allocation chose (σ/σ₁, or refit error), for the spectra plot.</summary>
    [JsonPropertyName("threshold")] public double? Threshold { get; set; }
    /// <summary>Where a long stage spent its time, for diagnostics.</summary>
    [JsonPropertyName("stage_details")] public Dictionary<string, string> StageDetails { get; set; } = [];
    [JsonPropertyName("stage_seconds")] public Dictionary<string, double> StageSeconds { get; set; } = [];
    [JsonPropertyName("groups")] public List<GroupFigures> Groups { get; set; } = [];
    /// <summary>The latency target's model and how its prediction held up (null for other targets).</summary>
    [JsonPropertyName("latency_model")] public LatencyModelFigures? LatencyModel { get; set; }
}

/// <summary>The latency target: how the cost model was measured, what it predicted and what the pruned model measured.</summary>
public sealed class LatencyModelFigures
{
    [JsonPropertyName("provider")] public string Provider { get; set; } = "cpu";
    /// <summary>ONNX Runtime intra-op threads of the measurements and of the check (0: all cores).</summary>
    [JsonPropertyName("threads")] public int Threads { get; set; }
    /// <summary>Keep counts were rounded to multiples of this (the measured kernel step, or --round-to).</summary>
    [JsonPropertyName("step")] public int Step { get; set; }
    [JsonPropertyName("model_ms")] public double ModelMilliseconds { get; set; }
    [JsonPropertyName("layers")] public int Layers { get; set; }
    [JsonPropertyName("layers_timed_alone")] public int TimedAlone { get; set; }
    [JsonPropertyName("layers_not_timed")] public int NotTimed { get; set; }
    [JsonPropertyName("measure_seconds")] public double MeasureSeconds { get; set; }
    [JsonPropertyName("cached")] public bool Cached { get; set; }
    /// <summary>What the per-layer model predicts for the final keep counts.</summary>
    [JsonPropertyName("predicted_reduction")] public double PredictedReduction { get; set; }
    /// <summary>Allocations checked on the real pruned model before the final one (see <see cref="LatencyTarget"/>).</summary>
    [JsonPropertyName("checks")] public List<LatencyCheck> Checks { get; set; } = [];
    /// <summary>1 − pruned/original median batch-1 latency at <see cref="Threads"/>, timed alternately (null when not timed).</summary>
    [JsonPropertyName("measured_reduction")] public double? MeasuredReduction { get; set; }
}

public sealed class ModelFigures
{
    [JsonPropertyName("params")] public long Params { get; set; }
    [JsonPropertyName("macs")] public long Macs { get; set; }
    [JsonPropertyName("file_bytes")] public long FileBytes { get; set; }
    [JsonPropertyName("latency_ms_batch1")] public double? LatencyBatch1Ms { get; set; }
    [JsonPropertyName("latency_ms_batch8")] public double? LatencyBatch8Ms { get; set; }
}

/// <summary>Agreement over the outputs both models gave with the same shape; null figures when there was none.</summary>
public sealed class AgreementFigures
{
    [JsonPropertyName("cosine")] public double? Cosine { get; set; }
    [JsonPropertyName("max_abs_error")] public double? MaxAbsError { get; set; }
    [JsonPropertyName("top1_agreement")] public double? Top1Agreement { get; set; }
    /// <summary>True when <see cref="Top1Agreement"/> counts the positions of a sequence of class scores (a recognizer's [N, T, classes]), not samples.</summary>
    [JsonPropertyName("top1_per_position")] public bool? Top1PerPosition { get; set; }
    [JsonPropertyName("outputs_compared")] public int OutputsCompared { get; set; }
    /// <summary>Outputs left out, with why: a detector's outputs after NMS differ in count between the models.</summary>
    [JsonPropertyName("not_compared")] public List<string> NotCompared { get; set; } = [];
    /// <summary>
    /// When the outputs' sizes depend on the data (a detector's boxes after NMS): the values compared instead, the layer
    /// outputs just before that part (see <see cref="DataDependentPart"/>); null when the outputs were compared.
    /// </summary>
    [JsonPropertyName("values_compared")] public List<string>? ValuesCompared { get; set; }
    /// <summary>With <see cref="ValuesCompared"/>: the outputs left out because their sizes depend on the data, and what they follow.</summary>
    [JsonPropertyName("data_dependent_outputs")] public List<string>? DataDependentOutputs { get; set; }
    [JsonPropertyName("data_dependent_after")] public List<string>? DataDependentAfter { get; set; }

    [JsonIgnore] public bool Measured => OutputsCompared > 0;

    /// <param name="before">When set, <paramref name="c"/> compared the values before this data-dependent part, not the outputs.</param>
    public static AgreementFigures From(OnnxSlim.Runtime.OutputComparison c, DataDependentPart? before = null) => new()
    {
        Cosine = c.Compared > 0 ? c.Cosine : null,
        MaxAbsError = c.Compared > 0 ? c.MaxAbsError : null,
        Top1Agreement = c.Top1Agreement,
        Top1PerPosition = c.Top1Agreement is null ? null : c.Top1PerPosition,
        OutputsCompared = c.Compared,
        NotCompared = [.. c.NotCompared],
        ValuesCompared = before is null ? null : [.. before.Compared],
        DataDependentOutputs = before is null ? null : [.. before.Outputs],
        DataDependentAfter = before is null ? null : [.. before.SourceOps],
    };

    /// <summary>One line: the figures, and the outputs left out.</summary>
    public string Describe()
    {
        string left = NotCompared.Count == 0 ? "" : $"not compared (original vs pruned shape): {string.Join(", ", NotCompared)}";
        if (ValuesCompared is { } values) return DescribeBefore(values, left);
        if (!Measured) return $"not measured: no output has the same shape in both models ({left})";
        return FormattableString.Invariant($"cosine {Cosine:F5}, max abs error {MaxAbsError:G4}") +
            (Top1Agreement is { } t ? FormattableString.Invariant($", top-1 agreement {t * 100:0.0} %{(Top1PerPosition == true ? " per position" : "")}") : "") +
            (left.Length == 0 ? "" : $" ({OutputsCompared} output{(OutputsCompared == 1 ? "" : "s")} compared; {left})");
    }

    private string DescribeBefore(List<string> values, string left)
    {
        var outputs = DataDependentOutputs ?? [];
        var (before, outputsLeft) = DataDependentPart.Wording(values, DataDependentAfter ?? [], outputs, values.Count);
        if (!Measured)
            return $"not measured: none of the {values.Count} {before} has the same shape in both models, and the outputs ({string.Join(", ", outputs.Select(o => $"'{o}'"))}) have sizes that depend on the data ({left})";
        string count = OutputsCompared == values.Count ? $"the {values.Count}" : $"{OutputsCompared} of the {values.Count}";
        return FormattableString.Invariant($"cosine {Cosine:F5}, max abs error {MaxAbsError:G4} over {count} {before}, {outputsLeft}") +
            (left.Length == 0 ? "" : $"; {left}");
    }
}

public sealed class GroupFigures
{
    [JsonPropertyName("id")] public int Id { get; set; }
    [JsonPropertyName("producers")] public List<string> Producers { get; set; } = [];
    [JsonPropertyName("channels")] public int Channels { get; set; }
    [JsonPropertyName("kept")] public int Kept { get; set; }
    [JsonPropertyName("frozen")] public bool Frozen { get; set; }
    [JsonPropertyName("reason")] public string? Reason { get; set; }
    [JsonPropertyName("rank_capped")] public bool RankCapped { get; set; }
    [JsonPropertyName("macs_share")] public double MacsShare { get; set; }
    /// <summary>σ_i/σ_1, for the spectra plot (null for frozen groups).</summary>
    [JsonPropertyName("normalized_spectrum")] public double[]? NormalizedSpectrum { get; set; }
    /// <summary>What the allocation's threshold was compared with (see KeepPlan.AllocationCurves); null for frozen groups and plan files.</summary>
    [JsonPropertyName("allocation_curve")] public double[]? AllocationCurve { get; set; }
}
