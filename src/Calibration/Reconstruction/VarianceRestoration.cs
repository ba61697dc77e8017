namespace OnnxSlim.Calibration;

/// <summary>
/// Rescales each output of a ridge least-squares fit about its mean so that its variance over the fitting rows is the
/// targets' variance. Why: least squares shrinks toward the mean whatever the kept inputs cannot explain (the fit's
/// variance is the targets' less the residual's), so every re-fitted layer hands the next ones activations narrower than
/// those the model was trained on, and the narrowing adds up with depth. Restoring the spread costs the layer a little
/// squared error, (s − 1)² times the fit's variance. The same idea as the data-free path's variance correction from
/// BatchNorm statistics (<c>RewriteOptions.VarianceCorrection</c>), here from the calibration rows.
/// </summary>
internal static class VarianceRestoration
{
    /// <summary>
    /// The largest factor an output is spread by: an output its inputs explain poorly would otherwise be mostly amplified
    /// noise. PP-OCRv4 rec at −70 % MACs, pooled line accuracy, seeds 0 / 1 / 2: at most ×2 60.02 / 58.09 / 58.82 %, ×1.25
    /// 62.10 / 61.04 / 61.81 % (×1.1 seed 0 61.08 %, ×4 as ×2); at −50 % both read the same on every set and seed.
    /// </summary>
    public const double MaxScale = 1.25;

    /// <summary>Spreads below 1 + this are rounding, not narrowing.</summary>
    private const double MinSpread = 1e-6;

    /// <summary>
    /// Rescales the outputs of <paramref name="theta"/> (n×m row-major, the bias last) in place; returns how many were.
    /// Everything comes from the sums the solve used, in O(n·m): the solve satisfies (G + λD)Θ = C + λDΘ₀ (D: the
    /// penalised features, Θ₀ the prior or zero), so θᵀGθ = θᵀc + λ·Σ_D θ(θ₀ − θ), and the fit's mean is the mean of what
    /// it fitted (C's bias row is Σy: the bias is not penalised). Only ever spreads an output (s ≥ 1), at most by
    /// <see cref="MaxScale"/>. <paramref name="solvedCross"/>: the C that <paramref name="theta"/> solved when it is not
    /// <paramref name="equations"/>' own (a hard-gate-aware re-solve's XᵀT'); the variance to restore is still that of the
    /// equations' targets.
    /// </summary>
    public static int Apply(NormalEquations equations, RidgeSolver solver, double[] theta, double[]? prior, double[]? solvedCross = null)
    {
        int n = equations.Features, m = equations.Targets;
        if (theta.Length != (long)n * m) throw new ArgumentException($"theta holds {theta.Length} values, {n}×{m} needs {(long)n * m}");
        if (solvedCross is not null && solvedCross.Length != theta.Length)
            throw new ArgumentException($"the solved cross product holds {solvedCross.Length} values, {n}×{m} needs {(long)n * m}");
        double rows = equations.Rows;
        if (rows < 2 || n < 2) return 0;
        var cross = solvedCross ?? equations.Cross;
        int bias = n - 1, scaled = 0;
        for (int o = 0; o < m; o++)
        {
            double quadratic = 0, shrink = 0;
            for (int f = 0; f < n; f++) quadratic += theta[(long)f * m + o] * cross[(long)f * m + o];
            for (int f = 0; f < solver.Penalised; f++)
            {
                double t = theta[(long)f * m + o];
                shrink += t * ((prior is null ? 0 : prior[(long)f * m + o]) - t);
            }
            quadratic += solver.Lambda * shrink;
            double mean = cross[(long)bias * m + o] / rows, targetMean = equations.Cross[(long)bias * m + o] / rows;
            double fitted = quadratic / rows - mean * mean, target = equations.TargetSquares[o] / rows - targetMean * targetMean;
            if (!(fitted > 1e-12 * target) || !(target > fitted)) continue;
            double scale = Math.Min(Math.Sqrt(target / fitted), MaxScale);
            // An exact fit differs from its targets by rounding alone: nothing to restore, nor to report.
            if (scale < 1 + MinSpread) continue;
            for (int f = 0; f < bias; f++) theta[(long)f * m + o] *= scale;
            // ŷ' = μ + s(ŷ − μ): the weights scale, and the bias keeps the mean where it was.
            theta[(long)bias * m + o] = scale * theta[(long)bias * m + o] + (1 - scale) * mean;
            scaled++;
        }
        return scaled;
    }
}
