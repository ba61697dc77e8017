namespace OnnxSlim.Calibration;

/// <summary>
/// The re-fit of one weight tensor (several nodes when they share it; <see cref="Name"/> joins their ids).
/// Errors are relative RMS errors against the original model on the sampled rows, before (the pruned
/// weights as they came) and after: ‖ŷ − y‖ / ‖y‖ of the layer's output, or, when the layer feeds a
/// residual Add or a Relu, of what reaches the next non-linearity (the Add's sum, after the Relu for a
/// ReLU-aware fit). <see cref="Features"/> counts the columns of one group's regression (with the bias).
/// </summary>
public sealed record LayerReconstruction(
    string Name,
    string OpType,
    int Rows,
    int Features,
    int Outputs,
    double ErrorBefore,
    double ErrorAfter,
    double Seconds,
    string? Skipped = null)
{
    /// <summary>False when the layer was left as it was; <see cref="Skipped"/> says why.</summary>
    public bool Fitted => Skipped is null;

    /// <summary>ReLU-aware re-solves run after the plain fit, over all groups (0 for a plain fit, or where none was worth it).</summary>
    public int ReluSolves { get; init; }

    /// <summary>Outputs whose spread was restored after a plain fit (<see cref="ReconstructionOptions.RestoreVariance"/>), over all groups.</summary>
    public int VarianceRestored { get; init; }
}

/// <summary>What <see cref="Reconstruction.Run"/> did, layer by layer.</summary>
public sealed record ReconstructionReport(
    IReadOnlyList<LayerReconstruction> Layers,
    int Images,
    int Levels,
    int RuntimeRuns,
    double Seconds)
{
    /// <summary>Of <see cref="Seconds"/>, the time spent in ONNX Runtime (sessions and runs); the rest is sampling and solving.</summary>
    public double RuntimeSeconds { get; init; }

    public int FittedCount => Layers.Count(l => l.Fitted);
    public IEnumerable<LayerReconstruction> SkippedLayers => Layers.Where(l => !l.Fitted);
}
