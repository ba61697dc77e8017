using OnnxSlim.Runtime;
namespace OnnxSlim.Calibration;

/// <summary>How <see cref="Reconstruction"/> samples, regularises and runs.</summary>
public sealed record ReconstructionOptions
{
    private readonly int _samplePositions = 20000;
    private readonly double _ridge = 1e-2;
    private readonly int _maxBatch = 64;
    private readonly long _cacheBudgetBytes = 32L << 30;
    private readonly long _activationBudgetBytes = 8L << 20;
    private readonly int _maxFeatures = 5000;
    private readonly int _reluIterations = 4;
    private readonly double _reluTolerance = 0.005;
    private readonly double _reluErrorTolerance = 0.01;
    private readonly long _storedRowsBudgetBytes = 256L << 20;
    private readonly double _maxReluProductMacs = 16e9;

    /// <summary>Rows (output positions, or classifier rows) sampled per layer; bounds memory and time.</summary>
    public int SamplePositions
    {
        get => _samplePositions;
        init => _samplePositions = value >= 1 ? value : throw new ArgumentException($"SamplePositions must be at least 1, got {value}");
    }

    /// <summary>
    /// Ridge strength relative to the mean diagonal of XᵀX (the bias column is not penalised). With
    /// <see cref="ShrinkTowardPruned"/>, measured on PP-OCRv4 rec at −50 % MACs (line accuracy): 1e-3 94.1 %,
    /// 1e-2 94.6 %, 3e-2 93.3 %; towards zero instead, 1e-3 93.6 % and 1e-2 81.7 %.
    /// </summary>
    public double Ridge
    {
        get => _ridge;
        init => _ridge = value >= 0 && double.IsFinite(value) ? value : throw new ArgumentException($"Ridge must be a finite number ≥ 0, got {value}");
    }

    /// <summary>
    /// The ridge pulls the weights towards the pruned layer's own (sliced, compensated) weights rather than
    /// towards zero: where the calibration data says little, the layer stays as it was.
    /// </summary>
    public bool ShrinkTowardPruned { get; init; } = true;

    /// <summary>
    /// After a plain least-squares fit (and a hard-gate-aware re-solve), each output is spread about its mean so that its
    /// variance over the fitting rows is the original's (<see cref="VarianceRestoration"/>): least squares narrows what the
    /// kept inputs cannot explain, and the narrowing adds up over the layers. Measured on PP-OCRv4 rec at −50 % MACs, line
    /// accuracy pooled over 2,744 held-out rendered lines, seeds 0 / 1 / 2: 95.81 / 96.43 / 96.21 → 96.14 / 96.61 / 96.47 %.
    /// </summary>
    public bool RestoreVariance { get; init; } = true;

    /// <summary>Seed of the position sampling; the same seed gives the same weights.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// Whether a pass consumes each batch (the layers' sums) on another thread while the next batches are read and run
    /// (two side by side where they are small; see <see cref="ReconstructionEngine"/>); false consumes it in turn on the
    /// pass's own thread. The same results either way: tests compare the two.
    /// </summary>
    internal bool ConsumeAlongside { get; init; } = true;

    /// <summary>
    /// ONNX Runtime's threads in a pass over the pruned model (0: its default, one per core). One: the batch is consumed on
    /// another thread meanwhile (<see cref="ConsumeAlongside"/>), which keeps the second core busy, and a second ORT thread
    /// inside a run of a few small kernels mostly hands over between them. PP-OCRv4 rec −50 %: the passes' runs 2.8 CPU s
    /// on the caller's thread plus ORT's own → 3.1 CPU s in all, the reconstruction 16.1–16.5 → 15.2–15.4 CPU s; det −50 %
    /// 9.5–10.0 → 9.1 CPU s (pairs at load 7–14); the same weights either way (rec and det outputs cmp-equal): tests compare
    /// the two.
    /// </summary>
    internal int PassThreads { get; init; } = 1;

    /// <summary>
    /// Whether a pass also caches the values a later pass would start from (see <see cref="ReconstructionEngine"/>);
    /// false recomputes them from what earlier levels cached. The same weights either way: tests compare the two.
    /// </summary>
    internal bool CacheForLaterPasses { get; init; } = true;

    /// <summary>Most calibration images per ONNX Runtime run (fewer when activations would exceed the budget).</summary>
    public int MaxBatch
    {
        get => _maxBatch;
        init => _maxBatch = value >= 1 ? value : throw new ArgumentException($"MaxBatch must be at least 1, got {value}");
    }

    /// <summary>
    /// Bytes one batch may take: the values a pass feeds and reads back, plus the intermediates ONNX Runtime keeps
    /// alive while running it. Sets the batch size, and with it the memory of a pass, whatever the number of samples.
    /// Small on purpose: a batch whose activations stay in the CPU's caches between operators runs the memory-bound
    /// ones (activations, depthwise convolutions, normalisations) much faster; PP-OCRv4 rec's passes took 2.4× less
    /// ONNX Runtime CPU time at 8 MiB than at 256 MiB, and more runs of one sample cost little.
    /// </summary>
    public long ActivationBudgetBytes
    {
        get => _activationBudgetBytes;
        init => _activationBudgetBytes = value >= 1 << 20 ? value : throw new ArgumentException($"ActivationBudgetBytes must be at least 1 MiB, got {value}");
    }

    /// <summary>
    /// Bytes of the pruned model's activations kept across passes, in temporary files (at most half the free
    /// space of the temporary folder's drive), so a pass starts where the previous one stopped; 0 recomputes
    /// every pass from the model inputs.
    /// </summary>
    public long CacheBudgetBytes
    {
        get => _cacheBudgetBytes;
        init => _cacheBudgetBytes = value >= 0 ? value : throw new ArgumentException($"CacheBudgetBytes must be ≥ 0, got {value}");
    }

    /// <summary>Layers with more input features per group than this are skipped (XᵀX grows with its square).</summary>
    public int MaxFeatures
    {
        get => _maxFeatures;
        init => _maxFeatures = value >= 1 ? value : throw new ArgumentException($"MaxFeatures must be at least 1, got {value}");
    }

    /// <summary>
    /// Fit a layer that feeds a residual Add to the Add's original output (correcting the skip operand's
    /// error too) rather than to its own output. See <see cref="OutputChain"/>.
    /// </summary>
    public bool ResidualTargets { get; init; } = true;

    /// <summary>
    /// Re-solves of a layer followed by a Relu in which entries the Relu zeroes in the original (and the
    /// fit already predicts ≤ 0) stop pulling the fit; 0 fits pre-activations plainly. The same for a hard gate
    /// (hard-swish: zero below −3, see <see cref="HardGate"/>), with its floor in place of 0. Needs the sampled
    /// rows in memory (see <see cref="StoredRowsBudgetBytes"/>).
    /// </summary>
    public int ReluIterations
    {
        get => _reluIterations;
        init => _reluIterations = value >= 0 ? value : throw new ArgumentException($"ReluIterations must be ≥ 0, got {value}");
    }

    /// <summary>
    /// The ReLU-aware re-solves stop before <see cref="ReluIterations"/> once one changes the weights by less than this
    /// fraction (‖ΔΘ‖ / ‖Θ‖, Frobenius); 0 always runs them all. Most layers settle after one or two (the later changes are
    /// 0.1–0.5 %); some keep moving and run all of them. At 0.005 the dev splits score as with all four: PP-OCRv4 rec −50 %
    /// 97.04 %, det −50 % IoU 0.9463 (worst page 0.9151 against 0.9152), fm_resnet_fused −50 / −70 % 94.41 / 93.10 %.
    /// With all four, the re-solves were a third of ResNet-50's reconstruction.
    /// </summary>
    public double ReluTolerance
    {
        get => _reluTolerance;
        init => _reluTolerance = value >= 0 && double.IsFinite(value) ? value : throw new ArgumentException($"ReluTolerance must be finite and ≥ 0, got {value}");
    }

    /// <summary>
    /// The ReLU-aware re-solves also stop once one lowers the fit's ReLU error (Σ (relu(a·XΘ + c) − relu(a·τ + c))² over the
    /// sampled rows) by less than this fraction (or raises it: a re-solve minimises a bound, not that error), keeping its
    /// weights; 0 never stops on the error. Each sweep over the rows measures the error of the weights it predicts with, so
    /// the rule costs nothing. On ResNet-50, whose layers never settle by <see cref="ReluTolerance"/>, the first re-solve
    /// lowers the error by 0.05–1.7 % and later ones by under 0.5 %: most layers stop after one re-solve instead of four.
    /// Dev splits at 0.01 (against 0): fm_resnet_fused −50 / −70 % 94.39 / 93.10 % (94.41 / 93.10), PP-OCRv4 det −50 % IoU
    /// 0.9462, worst page 0.9156 (0.9463, 0.9152), rec −50 % seeds 0–2 96.91 / 97.31 / 97.04 % (97.04 / 97.45 / 97.04; one
    /// line is 0.13 %).
    /// The first re-solve is not even started when, on every eighth output, it would lower their error by less than half
    /// this fraction (it costs as much as the plain fit's cross product and solve again, and the sweep before it; the sample
    /// costs a fraction of that). On ResNet-50 (256 images), whose first re-solves mostly gain 0.1–0.5 %, 12 of the 48
    /// ReLU-aware layers then re-solve (17 re-solves, against 53 in all 48 without the sample; layer4's wide 3×3 convs keep
    /// theirs): held-out agreement cosine 0.99992, max abs error 12.66 (12.56), top-1 100 %. Dev splits with the sample
    /// (against without): rec −50 % seeds 0–2 96.91 / 97.45 / 96.91 % (96.91 / 97.31 / 97.04), det −50 % IoU 0.9539, worst
    /// page 0.9218 (0.9539, 0.9214), fm_resnet_fused −50 / −70 % 94.39 / 93.10 % (the same). Against the whole tolerance
    /// instead of half (the sample's gain is an estimate: 1.02 / 1.21, 1.20 / 0.98, 1.43 / 1.47 % sampled / whole on
    /// ResNet-50), fm −70 % lost 0.06 pt.
    /// </summary>
    public double ReluErrorTolerance
    {
        get => _reluErrorTolerance;
        init => _reluErrorTolerance = value >= 0 && double.IsFinite(value) ? value : throw new ArgumentException($"ReluErrorTolerance must be finite and ≥ 0, got {value}");
    }

    /// <summary>
    /// The ReLU-aware re-solves run only on layers whose products over the stored rows (rows × features × outputs: a
    /// re-solve's XᵀT', a sweep's XΘ) are at most this many multiply-adds; larger ones get the plain fit of their stored
    /// rows, as <see cref="StoredRowsBudgetBytes"/> bounds their memory (infinity: no budget). Each re-solve costs about as much as the plain fit
    /// again. ResNet-50's layer4 3×3 convs at 224 images (10,976 rows × 3,889–4,105 features × ~470 outputs: 19–21 G) spent
    /// 1–1.7 s each on them: without them 256 images take 61.4 / 61.4 → 58.5 / 57.1 s (pairs), held-out agreement unchanged
    /// (cosine 0.99992, top-1 100 %; max abs error 12.66 → 12.60); its next largest layers there are about 11 G.
    /// PP-OCRv4 rec and det and the Fashion-MNIST ResNet stay under it (their outputs unchanged). Why not a floor on rows
    /// per feature instead (ResNet-50's layer4 has 2.7): the Fashion-MNIST ResNet calibrated on 32 images has 2.7–3.2 in
    /// its last stage, and its re-solves there still bought 0.12 pt at −50 % (dev split: 57 images right with them and
    /// wrong without, 34 the other way).
    /// </summary>
    public double MaxReluProductMacs
    {
        get => _maxReluProductMacs;
        init => _maxReluProductMacs = value >= 0 && !double.IsNaN(value) ? value : throw new ArgumentException($"MaxReluProductMacs must be ≥ 0, got {value}");
    }

    /// <summary>
    /// Whether grouped layers with small groups (those whose products go through the lane layout: depthwise convs, one
    /// output per group from a kernel's taps) get the ReLU-aware and hard-gate-aware re-solves too; off by default. On
    /// PP-OCRv4 rec (six depthwise convs before a hard-swish: 25–113 re-solves each, their rows kept per group) they moved
    /// line accuracy, pooled over 2,744 held-out lines and seeds 0–2, by 0.00 pt at −50 % (96.38 % either way) and −0.08 pt
    /// at −70 % (62.83 % with them, 62.91 % without), and cost about 1.5 s of its ~18. PP-OCRv4 det (none under the
    /// stored-rows budget), ResNet-50 and the Fashion-MNIST ResNet (no grouped convs) are unchanged.
    /// </summary>
    public bool GateAwareSmallGroups { get; init; }

    /// <summary>Bytes of sampled rows one layer may keep for the ReLU-aware iterations; larger layers are fitted plainly.</summary>
    public long StoredRowsBudgetBytes
    {
        get => _storedRowsBudgetBytes;
        init => _storedRowsBudgetBytes = value >= 0 ? value : throw new ArgumentException($"StoredRowsBudgetBytes must be ≥ 0, got {value}");
    }

    /// <summary>
    /// Fit a classifier behind global average pooling on per-position features (pooling and the linear
    /// map commute: many more rows than images) rather than on the pooled vectors.
    /// </summary>
    public bool PerPositionClassifier { get; init; } = true;

    public Provider Provider { get; init; } = Provider.Cpu;

    /// <summary>Receives one line per reconstructed layer (diagnostics); may be null.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Receives one line per pass over a model (what it computed, from where, batch, time); may be null.</summary>
    public Action<string>? PassLog { get; init; }

    /// <summary>Called with (layers done, layers in all) as layers are fitted; may be null.</summary>
    public Action<int, int>? Progress { get; init; }
}
