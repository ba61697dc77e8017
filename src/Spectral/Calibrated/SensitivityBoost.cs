namespace OnnxSlim.Spectral;

/// <summary>
/// Weights for the allocation from an end-to-end check: per group, the damage its pruning did to the model's outputs
/// over the local error its curve predicted there. Groups above the geometric mean of that ratio are weighed up by the
/// square root of how far above; the rest keep weight 1.
/// </summary>
public static class SensitivityBoost
{
    /// <summary>Local errors below this are read as this (a curve that predicts no error cannot be divided by).</summary>
    private const double MinLocalError = 1e-12;

    /// <summary>Largest weight one check may give a group.</summary>
    public const double MaxBoost = 30;

    /// <param name="damage">Per group id, the measured output damage (≥ 0); groups with none are left out.</param>
    /// <param name="localError">Per group id, the curve's relative error where the damage was measured.</param>
    /// <returns>Per group of <paramref name="damage"/> with positive damage, its weight in [1, <see cref="MaxBoost"/>].</returns>
    public static Dictionary<int, double> From(IReadOnlyDictionary<int, double> damage, IReadOnlyDictionary<int, double> localError)
    {
        ArgumentNullException.ThrowIfNull(damage);
        ArgumentNullException.ThrowIfNull(localError);
        var ratio = new Dictionary<int, double>();
        foreach (var (id, d) in damage)
        {
            if (!localError.TryGetValue(id, out double e)) throw new ArgumentException($"group {id} has a damage but no local error", nameof(localError));
            if (!(d >= 0) || !double.IsFinite(d)) throw new ArgumentException($"group {id}: damage {d} must be finite and non-negative", nameof(damage));
            if (d > 0) ratio[id] = d / Math.Max(e, MinLocalError);
        }
        if (ratio.Count == 0) return [];
        double mean = Math.Exp(ratio.Values.Average(Math.Log));
        return ratio.ToDictionary(r => r.Key, r => Math.Clamp(Math.Sqrt(r.Value / mean), 1, MaxBoost));
    }
}
