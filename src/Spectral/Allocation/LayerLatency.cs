namespace OnnxSlim.Spectral;

/// <summary>
/// One layer's predicted milliseconds at given keep counts: <see cref="FullMilliseconds"/> (the layer whole, timed
/// inside the model) times how its cost falls with its output channels and with its input channels, each a
/// <see cref="WidthCurve"/> measured along one axis with the other whole. The two are read as separable,
/// t(o, i) = t(O, I)·r_out(o)·r_in(i): exact for the bilinear MAC part of a conv, close for the rest. An
/// element-wise op or a depthwise conv has one count only; a side no keep changes has none.
/// </summary>
public sealed class LayerLatency
{
    public LayerLatency(string name, double fullMilliseconds, KeptChannels? output, WidthCurve? outputCurve, KeptChannels? input = null, WidthCurve? inputCurve = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!(fullMilliseconds >= 0) || double.IsInfinity(fullMilliseconds))
            throw new ArgumentException($"{name}: milliseconds must be finite and non-negative, got {fullMilliseconds}", nameof(fullMilliseconds));
        if ((output is null) != (outputCurve is null)) throw new ArgumentException($"{name}: an output count needs its curve, and the reverse", nameof(outputCurve));
        if ((input is null) != (inputCurve is null)) throw new ArgumentException($"{name}: an input count needs its curve, and the reverse", nameof(inputCurve));
        Name = name;
        FullMilliseconds = fullMilliseconds;
        Output = output;
        OutputCurve = outputCurve;
        Input = input;
        InputCurve = inputCurve;
    }

    /// <summary>Which node this is (for reports).</summary>
    public string Name { get; }

    public double FullMilliseconds { get; }
    public KeptChannels? Output { get; }
    public WidthCurve? OutputCurve { get; }
    public KeptChannels? Input { get; }
    public WidthCurve? InputCurve { get; }

    public IEnumerable<int> Groups => (Output?.Groups ?? []).Concat(Input?.Groups ?? []);

    public double At(ReadOnlySpan<int> keep)
    {
        double t = FullMilliseconds;
        if (Output is not null) t *= OutputCurve!.Ratio(Output.At(keep));
        if (Input is not null) t *= InputCurve!.Ratio(Input.At(keep));
        return t;
    }
}
