using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning;

/// <summary>The decision for every group: which channels stay, and the spectra and allocation it came from.</summary>
public sealed class KeepPlan
{
    public required IReadOnlyDictionary<int, int[]> KeepByGroup { get; init; }
    /// <summary>Per group whose allocation read it, its weight spectrum: with a calibrated ranking, only the groups it could not rank.</summary>
    public required IReadOnlyDictionary<int, FilterSpectrum> Spectra { get; init; }

    /// <summary>Groups whose filters are shorter than the group is wide, so their spectrum has a structural zero tail.</summary>
    public IReadOnlySet<int> RankCapped { get; init; } = new HashSet<int>();
    public KeepAllocation? Allocation { get; init; }

    /// <summary>
    /// Per prunable group, what the allocation's threshold was compared with, unit by unit: its normalised weight spectrum
    /// σᵢ/σ₁, or for a group ranked on calibration data its re-fit error curve, times the group's weight (its cost, and
    /// the end-to-end check's boost). A group keeps the units at or above the threshold (then its floor and rounding).
    /// </summary>
    public IReadOnlyDictionary<int, double[]> AllocationCurves { get; init; } = new Dictionary<int, double[]>();
    public IReadOnlySet<int> Ignored { get; init; } = new HashSet<int>();

    /// <summary>What the planner wants the user to know (e.g. groups the calibrated ranking could not measure).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Per group id, the Gram its GEM selection built and kept for the data-free fold (<see cref="KeptGram"/>; wide groups only).</summary>
    public IReadOnlyDictionary<int, KeptGram> KeptGrams { get; init; } = new Dictionary<int, KeptGram>();

    public int KeptOf(int group, int width) => KeepByGroup.TryGetValue(group, out var k) ? k.Length : width;
}
