namespace OnnxSlim.Runtime.Recovery;

/// <summary>
/// The re-fit of one weight tensor. Errors are relative RMS errors of the layer's outputs against the
/// original model's on the sampled rows: ‖XW − Y‖ / ‖Y‖, before (the pruned weights as sliced) and after.
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
    /// <summary>Several nodes sharing one weight are fitted together; <see cref="Name"/> joins their ids.</summary>
    public bool Fitted => Skipped is null;
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

    public static ReconstructionReport Empty(int images) => new([], images, 0, 0, 0);
}
