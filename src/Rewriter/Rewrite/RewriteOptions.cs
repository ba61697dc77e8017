namespace OnnxSlim.Rewriter;

/// <summary>What to do with the contribution of the removed channels to the layers that read them.</summary>
public enum Compensation
{
    /// <summary>Plain removal: the next layers simply lose the removed inputs.</summary>
    None,

    /// <summary>
    /// Exact merge only: a removed channel that is a proven positive multiple of a kept one (after the
    /// following per-channel affine) has its outgoing weights added, scaled, into the kept channel's; the
    /// output is unchanged. Other removed channels are dropped.
    /// </summary>
    Exact,

    /// <summary>
    /// Exact merge, and for every other removed channel a data-free least-squares fold: its effective filter
    /// (BatchNorm-scaled) is approximated by its <see cref="RewriteOptions.FoldTerms"/> best-matching kept filters,
    /// w_j ≈ Σ a_i·w_i, and the next layers' input weights get W[:, i] += a_i·W[:, j]. Through ReLU-like
    /// functions only non-negative coefficients are used (they are positively homogeneous); through saturating
    /// ones (Clip, Sigmoid), depthwise convs and gates nothing is folded.
    /// </summary>
    LeastSquares,
}

/// <summary>How <see cref="ChannelPruner.Apply(OnnxSlim.GraphIO.OnnxModel, ChannelGroupSet, IReadOnlyDictionary{int, int[]}, RewriteOptions?)"/> edits the graph besides slicing.</summary>
public sealed record RewriteOptions
{
    /// <summary>Plain slicing: no compensation, no bias correction.</summary>
    public static RewriteOptions Plain { get; } = new();

    /// <summary>
    /// The recommended setting without calibration data (chosen on fm_resnet, see tools/bench/compensation):
    /// exact merges, then a least-squares fold of each other removed filter on its 8 best-matching kept filters
    /// (non-negative through ReLU), and bias and variance correction from BatchNorm statistics where the model
    /// has them.
    /// </summary>
    public static RewriteOptions DataFree { get; } = new()
    {
        Compensation = Compensation.LeastSquares,
        FoldTerms = 8,
        BiasCorrection = true,
        VarianceCorrection = true,
    };

    public Compensation Compensation { get; init; }

    /// <summary>
    /// Per group id, the Gram of the group's effective filters that planning built (<see cref="Spectral.KeptGram"/>): a
    /// least-squares fold that would build a float32-product Gram of the same rows reads this one instead when the rows
    /// are the same bits (checked), so the fold is the same either way. <see cref="ChannelPruner"/> releases them once
    /// its plans are made.
    /// </summary>
    public IReadOnlyDictionary<int, Spectral.KeptGram>? PlannedGrams { get; init; }

    /// <summary>
    /// Adds the expected value of what the removed channels (minus what the fold put back) contributed to
    /// each reading layer's bias (or, when a BatchNormalization directly follows the reading layer, subtracts
    /// it from that BatchNorm's mean, so no parameter is added). The expected value of a channel comes from the
    /// BatchNorm that produced it: its output is taken as N(β, γ²), then carried through ReLU/Clip/… and
    /// residual Adds. Channels without such statistics (BatchNorm folded into the conv) are not corrected.
    /// </summary>
    public bool BiasCorrection { get; init; }

    /// <summary>
    /// Legacy switch: true means "compensate" (<see cref="Compensation.Exact"/> unless a stronger
    /// compensation is already set), false means <see cref="Compensation.None"/>. Prefer <see cref="Compensation"/>.
    /// </summary>
    public bool Merge
    {
        get => Compensation != Compensation.None;
        init => Compensation = value ? (Compensation == Compensation.None ? Compensation.Exact : Compensation) : Compensation.None;
    }

    /// <summary>Least squares: how many kept filters approximate one removed filter (1: the best-matching one).</summary>
    public int FoldTerms { get; init; } = 1;

    /// <summary>
    /// Least squares: fold only when the approximation's cosine with the removed filter is at least this
    /// (for one term: the cosine between the two filters).
    /// </summary>
    public double MinMatch { get; init; }

    /// <summary>
    /// Least squares, BatchNorm models: weight of an extra column holding each channel's BatchNorm shift in units of
    /// its spread (β/|γ|, scaled like the row), so that the fit also matches where the channel sits relative to
    /// zero; 0 fits the filters only.
    /// </summary>
    public double OffsetWeight { get; init; }

    /// <summary>Least squares with several terms: ridge added to the Gram diagonal, relative to its mean.</summary>
    public double Ridge { get; init; } = 1e-3;

    /// <summary>
    /// Where a BatchNormalization directly follows a reading layer, scales its running variance by the share of
    /// the layer's output variance the kept (folded) inputs carry, estimated from the inputs' BatchNorm
    /// statistics with the inputs taken as independent. Without it the BatchNorm divides the shrunken output by
    /// the old spread, and the signal fades layer after layer.
    /// </summary>
    public bool VarianceCorrection { get; init; }

    /// <summary>Experimental: allow negative coefficients through ReLU-like functions too (not positively homogeneous there).</summary>
    public bool SignedThroughNonlinearity { get; init; }
}

/// <param name="RemovedByGroup">Channels removed per group id (groups with none removed are absent).</param>
/// <param name="Merged">Removed channels whose outgoing weights were merged exactly into a kept channel.</param>
/// <param name="TensorsSliced">Stored tensors that were sliced.</param>
public sealed record RewriteResult(IReadOnlyDictionary<int, int> RemovedByGroup, int Merged, int TensorsSliced)
{
    public int Removed => RemovedByGroup.Values.Sum();

    /// <summary>Removed channels folded into kept ones by least squares (at one reading layer at least).</summary>
    public int Folded { get; init; }

    /// <summary>Layers whose bias (or following BatchNorm mean) was corrected.</summary>
    public int BiasCorrected { get; init; }

    /// <summary>What the compensation could not do, in words (e.g. no BatchNorm statistics for bias correction).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}
