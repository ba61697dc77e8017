using OnnxSlim.Calibration;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning;

/// <summary>Which filters each group keeps once its count is known.</summary>
public enum SelectionCriterion
{
    /// <summary>Nuclear-norm greedy elimination on the group's weight matrix (SLIMING's GEM).</summary>
    Gem,
    L1,
    L2,
    Random,

    /// <summary>
    /// Needs calibration data: channels ranked by the output error of the least-squares re-fitted layers that read
    /// them; with sliming allocation the error curves also replace the spectra.
    /// </summary>
    Refit,
}

/// <summary>What the rewriter does with what the removed channels contributed.</summary>
public enum CompensationMode
{
    /// <summary>Plain slicing.</summary>
    None,

    /// <summary>Merge removed channels that are proven multiples of kept ones (output unchanged).</summary>
    Exact,

    /// <summary>Exact merges, least-squares folds and BatchNorm-statistics corrections (<see cref="RewriteOptions.DataFree"/>).</summary>
    DataFree,
}

/// <summary>How <see cref="Pruner.Prune"/> prunes: the budget, how it is spent, and what is measured afterwards.</summary>
public sealed record PruneOptions
{
    public const double MaxRatio = 0.95;
    public const int AutoRoundTo = 8, AutoRoundMinWidth = 64;

    /// <summary>
    /// Auto rounding on large maps: ONNX Runtime's CPU convs run in NCHWc blocks of 16 channels with AVX-512 (8 with
    /// AVX2), and a width between two multiples costs as much as the next one (tools/bench/arch/widths.sh, 3×3 conv
    /// pairs at 20²…160²: 17…31 channels ≈ 32, 56 ≈ 64, 40 ≈ 48; 16 ≈ half of 32). Groups narrower than
    /// <see cref="AutoRoundMinWidth"/> whose producers write maps of at least <see cref="HighResolutionPixels"/> positions
    /// keep multiples of 16 (a group of 16 or fewer keeps all); wider groups keep the step of 8 they had (16 would
    /// also be faster there on AVX-512, but moves the accuracy of plans already measured).
    /// </summary>
    public const int HighResolutionRoundTo = 16;

    public const long HighResolutionPixels = 56 * 56;

    /// <summary>Fraction of <see cref="Target"/> removed, in [0, <see cref="MaxRatio"/>].</summary>
    public double Ratio { get; init; } = 0.5;

    public BudgetTarget Target { get; init; } = BudgetTarget.Macs;

    /// <summary>Null: <see cref="SelectionCriterion.Refit"/> when <see cref="Calibration"/> is given (and no <see cref="Plan"/>), else GEM.</summary>
    public SelectionCriterion? Criterion { get; init; }

    public AllocationMethod Allocation { get; init; } = AllocationMethod.Sliming;

    /// <summary>Node names or globs (* and ?) whose output channels stay whole.</summary>
    public IReadOnlyList<string> Ignore { get; init; } = [];

    /// <summary>
    /// Every group keeps at least this fraction of its channels, and one. Unset: <see cref="DefaultMinKeepFraction"/>,
    /// or <see cref="RefitMinKeepFraction"/> with <c>--criterion refit</c>.
    /// </summary>
    public double MinKeepFraction { get => _minKeepFraction ?? (Refit ? RefitMinKeepFraction : DefaultMinKeepFraction); init => _minKeepFraction = value; }
    private readonly double? _minKeepFraction;

    public const double DefaultMinKeepFraction = 0.05;

    /// <summary>
    /// The floor with calibrated ranking and re-fitting: a layer re-fitted from a quarter of its input channels or fewer
    /// passes on an error the layers after it, fitted on its outputs, cannot take back, which the per-group error
    /// curves (each measured on the unpruned model) do not see. PP-OCRv4 rec at −70 % MACs: line accuracy 38.4 → 45.3 %
    /// (0.05 → 0.25); at −50 % MACs, on the Fashion-MNIST ResNet at −50/−70 % and PP-OCRv4 det at −50 % no group falls
    /// below it (outputs unchanged). A third: rec −70 % 52.8 %, but det −50 % mask IoU 0.9066 → 0.9046; 0.4: 53.7 %.
    /// </summary>
    public const double RefitMinKeepFraction = 0.25;

    /// <summary>Keep counts are multiples of this; 0 = auto (8 for groups of 64+ channels, which ORT's blocked CPU
    /// kernels run much faster; 16 for narrower groups on maps of 56×56 or more; exact counts for the rest).</summary>
    public int RoundTo { get; init; }

    /// <summary>Concrete input shapes for dynamic dims, as NAME=D1,D2,....</summary>
    public IReadOnlyList<string> InputShapes { get; init; } = [];

    public Provider Provider { get; init; } = Provider.Cpu;

    public CompensationMode Compensation { get; init; } = CompensationMode.DataFree;

    /// <summary>
    /// The model's inputs with samples along the first axis: used for ranking, reconstruction and validation
    /// (<see cref="CalibrationData.FromTensors"/> for arrays in memory, <see cref="CalibrationInputs.Load"/> for files). The
    /// caller owns it: pruning reads it, and never disposes it.
    /// </summary>
    public CalibrationData? Calibration { get; init; }

    /// <summary>
    /// Whether a calibrated run on a model with large maps (a value of at least <see cref="Pruner.LargeValueBytes"/> a sample)
    /// asks glibc to keep the memory ONNX Runtime's sessions free for the next ones (<see cref="Runtime.NativeHeap"/>):
    /// process-wide and for the rest of the process, so for a process that exits after pruning, such as the command line.
    /// Judged by the shape probe's shapes. PP-OCRv4 det (32 pages at 640², 12.5 MiB its largest value a sample), pairs in
    /// the same minutes: −50 % 29.6 / 34.4 → 22.6 / 22.4 s, the same outputs, peak 1.0 → 1.4 GB when the probe still ran
    /// every value (0.85–0.9 GB since it infers them, <see cref="Runtime.InferredShapes"/>). ResNet-50 on 256 images within
    /// the host's noise. Small maps are left alone: they save little there and keep more memory (PP-OCRv4 rec, kept from
    /// the start: 20.7 → 19.0–21.6 s, peak 839 → 957–1,064 MiB). What is kept is handed back once the plan's passes over
    /// the original are over, before the reconstruction (<see cref="Runtime.NativeHeap.ReturnFreedMemory"/>; det −50 % 0.71 GB,
    /// ResNet-50 on 256 images 1.57 GB).
    /// </summary>
    public bool KeepNativeMemory { get; init; }

    /// <summary>
    /// Calibration samples set aside for validation, never used for ranking or fitting; null = an eighth of them,
    /// at most 64 (one of two to eight, none when there is a single sample).
    /// </summary>
    public int? HeldOutSamples { get; init; }

    /// <summary>
    /// With the calibrated ranking: at most this many fitting samples for the allocation's end-to-end check (each ranked
    /// group pruned alone, the model's outputs compared with the original's, and groups that damage them more than their
    /// error curve says weighed up); fewer when the model is large (a fixed budget of multiply-adds), none below two.
    /// 0 turns the check off.
    /// </summary>
    public int SensitivitySamples { get; init; } = DefaultSensitivitySamples;

    public const int DefaultSensitivitySamples = 16;

    /// <summary>
    /// Fail (<see cref="ValidationFailedException"/>) when the pruned model agrees less than this with the original:
    /// top-1 agreement where the output is classifier-shaped ([N, K], or per position under a Softmax over its last axis,
    /// see <see cref="Runtime.ClassAxes"/>), else output cosine; on held-out calibration samples
    /// when there are some, else on random inputs.
    /// </summary>
    public double? MinAgreement { get; init; }

    /// <summary>A keep plan to apply instead of planning (groups matched by their producers).</summary>
    public PlanFile? Plan { get; init; }

    /// <summary>Run original and pruned models on ONNX Runtime and compare their outputs.</summary>
    public bool Validate { get; init; } = true;

    /// <summary>Time both models (needs <see cref="Validate"/>).</summary>
    public bool Time { get; init; } = true;

    /// <summary>
    /// ONNX Runtime intra-op threads of the latency target's measurements (and of the timing that checks them): 1 by
    /// default, the steadiest figures on a shared machine and what a batch-1 deployment on one core sees; 0 = all cores.
    /// </summary>
    public int LatencyThreads { get; init; } = 1;

    /// <summary>Seconds the latency target may spend timing layers alone; layers left over follow their MACs.</summary>
    public double LatencyBudgetSeconds { get; init; } = 20;

    /// <summary>
    /// How many times the latency target checks its allocation against the real pruned model (alternately with the
    /// original) and re-solves when the measured reduction misses the request by more than 1 point; 0: trust the model.
    /// </summary>
    public int LatencyChecks { get; init; } = 2;

    /// <summary>Where latency measurements are cached (null: ${ONNXSLIM_CACHE:-~/.cache/onnxslim}/latency; "" : no cache).</summary>
    public string? LatencyCacheFolder { get; init; }

    /// <summary>Timed runs per model at batch 1 (half as many at batch 8).</summary>
    public int TimedRuns { get; init; } = 20;

    public int Seed { get; init; }

    /// <summary>Called on the calling thread as stages start, advance and finish.</summary>
    public Action<PruneProgress>? Progress { get; init; }

    /// <summary>Diagnostic lines (per-layer fits, memory after each stage); null for none.</summary>
    public Action<string>? Log { get; init; }

    public SelectionCriterion EffectiveCriterion =>
        Criterion ?? (Calibration is not null && Plan is null ? SelectionCriterion.Refit : SelectionCriterion.Gem);

    public bool Refit => EffectiveCriterion == SelectionCriterion.Refit;

    /// <summary>The multiple a group of this width is rounded to, its producers writing maps of <paramref name="pixels"/> positions (0: unknown).</summary>
    public int RoundFor(int width, long pixels = 0) =>
        RoundTo > 0 ? RoundTo
        : pixels >= HighResolutionPixels && width < AutoRoundMinWidth ? (Target == BudgetTarget.Macs && Refit ? CheckedHighResolutionRoundTo : HighResolutionRoundTo)
        : width >= AutoRoundMinWidth ? AutoRoundTo : 1;

    /// <summary>
    /// The step of narrow groups on large maps (<see cref="HighResolutionRoundTo"/>'s) when the budget is MACs and the
    /// allocation is calibrated (<c>--criterion refit</c>, its end-to-end check weighing the groups). The step of 16 is
    /// for ONNX Runtime's latency, which a MACs budget does not ask for; on a 24-wide group it leaves two choices, 16 or 24,
    /// so the budget the check moves onto the groups it measured as damaging has to come from the rest of the model
    /// instead of from the narrow groups the check found cheap. PP-OCRv4 det at −50 % MACs (det_dev mask IoU, with the
    /// whole-model check and its boost moved to the next step, <see cref="Spectral.SensitivityBoost.AtNextStep"/>):
    /// step 16 0.9510, 8 0.9511, 4 0.9542 (the neck's 160² branch then keeps 8 of 24, the 80² one 12). PP-OCRv4 rec's
    /// calibrated plan does not change. Data-free runs and other targets keep step 16.
    /// </summary>
    public const int CheckedHighResolutionRoundTo = 4;

    public RewriteOptions RewriteOptions => Compensation switch
    {
        CompensationMode.None => RewriteOptions.Plain,
        CompensationMode.Exact => new RewriteOptions { Compensation = Rewriter.Compensation.Exact },
        _ => RewriteOptions.DataFree,
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad value.</summary>
    public void Check()
    {
        if (double.IsNaN(Ratio) || Ratio < 0 || Ratio > MaxRatio)
            throw new ArgumentException($"must be within [0, {MaxRatio}], got {Ratio}", nameof(Ratio));
        if (double.IsNaN(MinKeepFraction) || MinKeepFraction is < 0 or > 1)
            throw new ArgumentException($"must be a fraction within [0, 1], got {MinKeepFraction}", nameof(MinKeepFraction));
        if (RoundTo < 0) throw new ArgumentException($"must be 0 (auto) or positive, got {RoundTo}", nameof(RoundTo));
        if (TimedRuns < 1) throw new ArgumentException($"must be at least 1, got {TimedRuns}", nameof(TimedRuns));
        if (LatencyThreads < 0) throw new ArgumentException($"must be 0 (all cores) or positive, got {LatencyThreads}", nameof(LatencyThreads));
        if (LatencyChecks < 0) throw new ArgumentException($"must be non-negative, got {LatencyChecks}", nameof(LatencyChecks));
        if (!(LatencyBudgetSeconds >= 0)) throw new ArgumentException($"must be non-negative, got {LatencyBudgetSeconds}", nameof(LatencyBudgetSeconds));
        if (!Enum.IsDefined(Target)) throw new ArgumentException($"has no value {(int)Target}", nameof(Target));
        // ONNX Runtime's CUDA profiler times each kernel's launch, not its GPU work, so the per-layer model would see
        // widths that cost nothing to launch as cheap and prune a model to nothing chasing a reduction that batch-1 runs,
        // bound by launches, cannot give (an H200 measured: predicted 75 %, measured 14 %, at −99.5 % MACs on ResNet-50).
        if (Target == BudgetTarget.Latency && Provider == Provider.Cuda)
            throw new ArgumentException("latency is measured per kernel on the CPU provider only (ONNX Runtime's CUDA profiler times kernel launches, not GPU work); use --target macs with --provider cuda", nameof(Target));
        if (!Enum.IsDefined(Allocation)) throw new ArgumentException($"has no value {(int)Allocation}", nameof(Allocation));
        if (!Enum.IsDefined(Compensation)) throw new ArgumentException($"has no value {(int)Compensation}", nameof(Compensation));
        if (Criterion is { } c && !Enum.IsDefined(c)) throw new ArgumentException($"has no value {(int)c}", nameof(Criterion));
        if (Refit && Calibration is null)
            throw new ArgumentException("is needed by criterion refit", nameof(Calibration));
        if (Refit && Plan is not null)
            throw new ArgumentException("and criterion refit both choose the channels; give one", nameof(Plan));
        if (SensitivitySamples < 0) throw new ArgumentException($"must be ≥ 0, got {SensitivitySamples}", nameof(SensitivitySamples));
        if (HeldOutSamples is < 0) throw new ArgumentException($"must be ≥ 0, got {HeldOutSamples}", nameof(HeldOutSamples));
        if (Calibration is { } calibration && HeldOutSamples is int h && h >= calibration.Images)
            throw new ArgumentException($"leaves no sample to fit: {h} held out of {calibration.Images}", nameof(HeldOutSamples));
        if (MinAgreement is double m && !(m >= 0 && m <= 1)) throw new ArgumentException($"must be within [0, 1], got {m}", nameof(MinAgreement));
    }
}
