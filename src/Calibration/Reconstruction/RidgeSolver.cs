using OnnxSlim.Spectral.Numerics;
namespace OnnxSlim.Calibration;

/// <summary>
/// Closed-form ridge regression on accumulated normal equations: Θ = (XᵀX + λD)⁻¹ XᵀY, factored once
/// so further right-hand sides (the ReLU-aware iterations change only XᵀY) cost two triangular solves.
/// </summary>
/// <param name="factor">The Cholesky factor of XᵀX + λD.</param>
internal sealed class RidgeSolver(double[] factor, int features, double lambda, int penalised)
{
    private readonly double[] _factor = factor;

    public int Features { get; } = features;

    /// <summary>The ridge strength the factorisation holds (after any growth to make it positive definite).</summary>
    public double Lambda { get; } = lambda;

    /// <summary>The leading features the ridge applies to (all but an unpenalised bias).</summary>
    public int Penalised { get; } = penalised;

    /// <summary>
    /// λ = <paramref name="ridge"/> × the mean diagonal of XᵀX over the penalised features, so the strength
    /// does not depend on the activations' scale or the row count; the last feature is not penalised when
    /// <paramref name="lastIsBias"/> (the bias absorbs the mean shift freely). If the system is still not
    /// positive definite (all-zero features with ridge 0), λ grows tenfold from a tiny floor until Cholesky
    /// succeeds. Null only if that fails too.
    /// </summary>
    public static RidgeSolver? Factor(NormalEquations eq, double ridge, bool lastIsBias)
    {
        if (ridge < 0 || !double.IsFinite(ridge)) throw new ArgumentException($"ridge must be finite and ≥ 0, got {ridge}");
        int n = eq.Features;
        int penalised = lastIsBias ? n - 1 : n;
        double trace = 0;
        for (int i = 0; i < penalised; i++) trace += eq.Gram[i * n + i];
        double scale = penalised > 0 && trace > 0 ? trace / penalised : 1;
        double lambda = ridge * scale;
        var a = LargeArrays.Zeroed<double>((long)n * n);
        for (int attempt = 0; attempt < 12; attempt++)
        {
            Array.Copy(eq.Gram, a, a.Length);
            for (int i = 0; i < penalised; i++) a[i * n + i] += lambda;
            // An unpenalised bias column is singular only with zero rows; a tiny jitter keeps Cholesky defined.
            if (lastIsBias && a[(n - 1) * n + n - 1] <= 0) a[(n - 1) * n + n - 1] = 1e-12;
            if (Cholesky.Factor(a, n)) return new RidgeSolver(a, n, lambda, penalised);
            lambda = Math.Max(lambda * 10, 1e-10 * scale);
        }
        return null;
    }

    /// <summary>
    /// Θ (n×m) for the right-hand side XᵀY (n×m, row-major); null if it is not finite. With a
    /// <paramref name="prior"/> Θ₀ the ridge pulls towards it instead of towards zero: (XᵀX + λD)Θ = XᵀY + λDΘ₀.
    /// </summary>
    public double[]? Solve(double[] cross, int targets, double[]? prior = null)
    {
        var theta = (double[])cross.Clone();
        if (prior is not null)
            for (long i = 0; i < (long)Penalised * targets; i++) theta[i] += Lambda * prior[i];
        Cholesky.Solve(_factor, Features, theta, targets);
        return theta.All(double.IsFinite) ? theta : null;
    }
}
