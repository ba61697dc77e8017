namespace OnnxSlim.Spectral;

/// <summary>
/// A model's predicted latency at given keep counts (one per group): the layers that depend on kept channels
/// plus <see cref="FixedMilliseconds"/> for everything no keep count changes (frozen layers, runtime overhead).
/// Measured by the caller on the provider it will run on; here only the arithmetic.
/// </summary>
public sealed class LatencyModel
{
    /// <param name="step">The channel multiple the provider's kernels run fastest at (1: none), for rounding keep counts.</param>
    public LatencyModel(IReadOnlyList<LayerLatency> layers, double fixedMilliseconds, int step = 1)
    {
        if (step < 1) throw new ArgumentException($"step must be at least 1, got {step}", nameof(step));
        ArgumentNullException.ThrowIfNull(layers);
        if (!(fixedMilliseconds >= 0) || double.IsInfinity(fixedMilliseconds))
            throw new ArgumentException($"fixed milliseconds must be finite and non-negative, got {fixedMilliseconds}", nameof(fixedMilliseconds));
        for (int i = 0; i < layers.Count; i++)
            if (layers[i] is null) throw new ArgumentException($"layers[{i}] is null", nameof(layers));
        Layers = layers;
        FixedMilliseconds = fixedMilliseconds;
        Step = step;
    }

    public int Step { get; }

    public IReadOnlyList<LayerLatency> Layers { get; }
    public double FixedMilliseconds { get; }

    public double Milliseconds(ReadOnlySpan<int> keep)
    {
        double ms = FixedMilliseconds;
        foreach (var layer in Layers) ms += layer.At(keep);
        return ms;
    }

    /// <summary>The largest group index a layer reads (the keep array must be longer).</summary>
    public int MaxGroup => Layers.SelectMany(l => l.Groups).DefaultIfEmpty(-1).Max();
}
