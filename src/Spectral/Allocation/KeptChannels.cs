namespace OnnxSlim.Spectral;

/// <summary>
/// A tensor's channel count as the keep counts make it: <see cref="Constant"/> (frozen channels) plus, per
/// prunable group it carries, <c>PerKept·k(Group)</c> (1 for a plain activation; a Split part's share of its group).
/// </summary>
public sealed class KeptChannels
{
    private readonly int[] _groups;
    private readonly double[] _perKept;

    public KeptChannels(double constant, IReadOnlyList<(int Group, double PerKept)> terms)
    {
        ArgumentNullException.ThrowIfNull(terms);
        if (!(constant >= 0) || double.IsInfinity(constant)) throw new ArgumentException($"constant must be finite and non-negative, got {constant}", nameof(constant));
        foreach (var (group, perKept) in terms)
        {
            if (group < 0) throw new ArgumentException($"group must be non-negative, got {group}", nameof(terms));
            if (!(perKept > 0) || double.IsInfinity(perKept)) throw new ArgumentException($"group {group}: channels per kept one must be finite and positive, got {perKept}", nameof(terms));
        }
        Constant = constant;
        _groups = [.. terms.Select(t => t.Group)];
        _perKept = [.. terms.Select(t => t.PerKept)];
    }

    /// <summary>A count no keep changes.</summary>
    public static KeptChannels Fixed(double channels) => new(channels, []);

    public double Constant { get; }

    public IEnumerable<int> Groups => _groups;

    public IEnumerable<(int Group, double PerKept)> Terms => _groups.Zip(_perKept);

    public double At(ReadOnlySpan<int> keep)
    {
        double c = Constant;
        for (int t = 0; t < _groups.Length; t++) c += _perKept[t] * keep[_groups[t]];
        return c;
    }
}
