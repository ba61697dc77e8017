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

    /// <summary>
    /// A group's boost where the check measured it at its allocated keep k and the group's next step above k is the whole
    /// group: the check then measured exactly what that step removes, so the boost applies undamped (<see cref="From"/>
    /// damps it by the square root because one width says little about much narrower ones), and at the unit where the
    /// allocation decides that step. A group of step s keeps k + s only when its curve's unit at the rounding's midpoint
    /// clears the threshold, and the curve is lower there than at k: PP-OCRv4 det's head conv, 24 wide in steps of 16, has
    /// e(16) = 0.023 and e(20) = 0.008, so its boost of ×2.8 at 16 could never keep it whole (it needed about ×10). Weighed
    /// by boost² · e(k)/e(midpoint), the group takes the step exactly when its undamped boosted error at k is above the
    /// threshold. Other groups keep <paramref name="boost"/> (moving it for steps short of the whole group changed PP-OCRv4
    /// rec's plans for no gain on det: det_dev 0.9542 against 0.9539). At most <see cref="MaxBoost"/>, never below
    /// <paramref name="boost"/>.
    /// </summary>
    /// <param name="boost">The group's weight from <see cref="From"/>, at least 1.</param>
    /// <param name="curve">The group's relative error e(c) with c channels kept, c in [0, width).</param>
    /// <param name="group">The planning group: its width, floor and step.</param>
    /// <param name="keep">The keep count the check measured, as allocated.</param>
    public static double AtNextStep(double boost, IReadOnlyList<double> curve, PlanningGroup group, int keep)
    {
        ArgumentNullException.ThrowIfNull(curve);
        ArgumentNullException.ThrowIfNull(group);
        if (!(boost >= 1) || double.IsInfinity(boost)) throw new ArgumentException($"boost must be finite and at least 1, got {boost}", nameof(boost));
        if (curve.Count < group.Width) throw new ArgumentException($"the curve has {curve.Count} values, the group is {group.Width} wide", nameof(curve));
        if (keep < 0 || keep > group.Width) throw new ArgumentException($"keep must be in [0, {group.Width}], got {keep}", nameof(keep));
        if (boost == 1 || keep == group.Width) return boost;
        int count = BudgetSolver.NextStepCount(group, keep);
        if (count == 0 || BudgetSolver.Round(group, count) < group.Width) return boost;
        double atKeep = curve[keep], atStep = curve[count - 1];
        double moved = atStep > 0 ? boost * boost * atKeep / atStep : MaxBoost;
        return Math.Clamp(moved, boost, MaxBoost);
    }
}
