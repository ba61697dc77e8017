using OnnxSlim.Spectral;

namespace OnnxSlim.Cli.Pipeline;

/// <summary>The decision for every group: which channels stay, and the spectra and allocation it came from.</summary>
public sealed class KeepPlan
{
    public required IReadOnlyDictionary<int, int[]> KeepByGroup { get; init; }
    public required IReadOnlyDictionary<int, FilterSpectrum> Spectra { get; init; }
    public KeepAllocation? Allocation { get; init; }
    public IReadOnlySet<int> Ignored { get; init; } = new HashSet<int>();

    public int KeptOf(int group, int width) => KeepByGroup.TryGetValue(group, out var k) ? k.Length : width;
}
