namespace OnnxSlim.Runtime.Recovery;

/// <summary>Closed-form ridge regression on accumulated normal equations: Θ = (XᵀX + λD)⁻¹ XᵀY.</summary>
internal static class RidgeSolver
{
    /// <summary>
    /// Solves for Θ (n×m). λ = <paramref name="ridge"/> × the mean diagonal of XᵀX over the penalised
    /// features, so the strength does not depend on the activations' scale or the row count; the last
    /// feature is not penalised when <paramref name="lastIsBias"/> (the bias absorbs the mean shift freely).
    /// If the system is still not positive definite (all-zero features with ridge 0), λ grows tenfold
    /// from a tiny floor until Cholesky succeeds. Returns null only if that fails too.
    /// </summary>
    public static double[]? Solve(NormalEquations eq, double ridge, bool lastIsBias)
    {
        if (ridge < 0 || !double.IsFinite(ridge)) throw new ArgumentException($"ridge must be finite and ≥ 0, got {ridge}");
        int n = eq.Features, m = eq.Targets;
        int penalised = lastIsBias ? n - 1 : n;
        double trace = 0;
        for (int i = 0; i < penalised; i++) trace += eq.Gram[i * n + i];
        double scale = penalised > 0 && trace > 0 ? trace / penalised : 1;
        double lambda = ridge * scale;
        var a = new double[(long)n * n];
        for (int attempt = 0; attempt < 12; attempt++)
        {
            Array.Copy(eq.Gram, a, a.Length);
            for (int i = 0; i < penalised; i++) a[i * n + i] += lambda;
            // An unpenalised bias column is singular only with zero rows; a tiny jitter keeps Cholesky defined.
            if (lastIsBias && a[(n - 1) * n + n - 1] <= 0) a[(n - 1) * n + n - 1] = 1e-12;
            if (Cholesky.Factor(a, n))
            {
                var theta = (double[])eq.Cross.Clone();
                Cholesky.Solve(a, n, theta, m);
                if (theta.All(double.IsFinite)) return theta;
            }
            lambda = Math.Max(lambda * 10, 1e-10 * scale);
        }
        return null;
    }
}
