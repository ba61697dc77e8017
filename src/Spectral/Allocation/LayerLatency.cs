namespace OnnxSlim.Spectral;

/// <summary>
/// One layer's predicted milliseconds at given keep counts: <see cref="FullMilliseconds"/> (the layer whole, timed
/// inside the model) times how its cost falls with its output channels and with its input channels, each a
/// <see cref="WidthCurve"/> measured along one axis with the other whole. The two are read as separable,
/// t(o, i) = t(O, I)·r_out(o)·r_in(i): exact for the bilinear MAC part of a conv, close for the rest. An
/// element-wise op or a depthwise conv has one count only; a side no keep changes has none.
/// </summary>
public sealed class LayerLatency(string name, double fullMilliseconds, KeptChannels? output, WidthCurve? outputCurve,
    KeptChannels? input = null, WidthCurve? inputCurve = null)
{
    /// <summary>Which node this is (for reports).</summary>
    public string Name { get; } = name ?? throw new ArgumentNullException(nameof(name));

    public double FullMilliseconds { get; } = fullMilliseconds >= 0 && !double.IsInfinity(fullMilliseconds) ? fullMilliseconds
        : throw new ArgumentException($"{name}: milliseconds must be finite and non-negative, got {fullMilliseconds}", nameof(fullMilliseconds));

    public KeptChannels? Output { get; } = output;
    public WidthCurve? OutputCurve { get; } = CurveOf(name, "an output", output, outputCurve, nameof(outputCurve));
    public KeptChannels? Input { get; } = input;
    public WidthCurve? InputCurve { get; } = CurveOf(name, "an input", input, inputCurve, nameof(inputCurve));

    /// <summary>A side has a count and its curve, or neither.</summary>
    private static WidthCurve? CurveOf(string name, string side, KeptChannels? count, WidthCurve? curve, string parameter) =>
        (count is null) == (curve is null) ? curve : throw new ArgumentException($"{name}: {side} count needs its curve, and the reverse", parameter);

    public IEnumerable<int> Groups => (Output?.Groups ?? []).Concat(Input?.Groups ?? []);

    public double At(ReadOnlySpan<int> keep)
    {
        double t = FullMilliseconds;
        if (Output is not null) t *= OutputCurve!.Ratio(Output.At(keep));
        if (Input is not null) t *= InputCurve!.Ratio(Input.At(keep));
        return t;
    }
}
