namespace OnnxSlim.Spectral;

/// <summary>
/// Measured milliseconds of a layer at a few channel counts (ascending, the last one the layer's whole width), read
/// between them by linear interpolation after rounding the count up to the provider's <see cref="Step"/>: a kernel
/// that works in blocks of 16 channels costs at 100 what it costs at 112. Below the first width the line runs to (0, 0).
/// </summary>
public sealed class WidthCurve
{
    private readonly double[] _widths;
    private readonly double[] _ms;

    public WidthCurve(IReadOnlyList<double> widths, IReadOnlyList<double> milliseconds, int step = 1)
    {
        ArgumentNullException.ThrowIfNull(widths);
        ArgumentNullException.ThrowIfNull(milliseconds);
        if (widths.Count == 0 || widths.Count != milliseconds.Count)
            throw new ArgumentException($"need as many widths as timings, and at least one: got {widths.Count} and {milliseconds.Count}", nameof(milliseconds));
        if (step < 1) throw new ArgumentException($"step must be at least 1, got {step}", nameof(step));
        for (int i = 0; i < widths.Count; i++)
        {
            if (!(widths[i] > 0) || double.IsInfinity(widths[i]) || (i > 0 && !(widths[i] > widths[i - 1])))
                throw new ArgumentException($"widths must be positive, finite and ascending; widths[{i}] = {widths[i]}", nameof(widths));
            if (!(milliseconds[i] >= 0) || double.IsInfinity(milliseconds[i]))
                throw new ArgumentException($"milliseconds[{i}] = {milliseconds[i]} must be finite and non-negative", nameof(milliseconds));
        }
        _widths = [.. widths];
        _ms = [.. milliseconds];
        Step = step;
    }

    /// <summary>A cost proportional to the channel count (rounded up to <paramref name="step"/>), <paramref name="width"/> being whole.</summary>
    public static WidthCurve Linear(double width, int step = 1) => new([width], [1.0], step);

    public int Step { get; }

    /// <summary>The widest measured count (where the layer is whole).</summary>
    public double FullWidth => _widths[^1];

    public double FullMilliseconds => _ms[^1];

    /// <summary>The cost at <paramref name="channels"/> over the cost at the whole width (1 when the whole width costs nothing).</summary>
    public double Ratio(double channels) => FullMilliseconds > 0 ? At(channels) / FullMilliseconds : 1;

    public double At(double channels)
    {
        double c = Math.Min(Math.Ceiling(channels / Step - 1e-9) * Step, FullWidth);
        if (c <= 0) return 0;
        if (c <= _widths[0]) return _ms[0] * c / _widths[0];
        int hi = 1;
        while (hi < _widths.Length - 1 && _widths[hi] < c) hi++;
        double t = (c - _widths[hi - 1]) / (_widths[hi] - _widths[hi - 1]);
        return _ms[hi - 1] + t * (_ms[hi] - _ms[hi - 1]);
    }
}
