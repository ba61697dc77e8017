using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace OnnxSlim.Spectral;

/// <summary>
/// Reference GEM for tests and benchmarks (small groups only): at every step a fresh eigendecomposition
/// of the kept rows' Gram (MathNet, independent of the fast path's own solver) and the loss of EVERY
/// candidate, then the single cheapest row goes. O(C⁴).
/// Each loss uses the eigenbasis directly: with weights w_i = U_ji²,
/// loss_j = (2/π)∫₀^∞ Σw·λ/(λ+t²)² / Σw/(λ+t²) dt, integrated densely (10 nodes per decade over
/// [1e−9, 1e5]·σ₁), which agrees with removing the row and summing singular values to ~1e−9.
/// </summary>
public sealed class ExactGreedySelector : IFilterSelector
{
    public const int MaxRows = 512;

    public int[] Select(FilterMatrix m, int keep)
    {
        SelectorArgs.CheckKeep(m, keep);
        if (m.Rows > MaxRows)
            throw new ArgumentException($"ExactGreedySelector is O(C⁴) and meant for groups of at most {MaxRows} rows, got {m.Rows}", nameof(m));
        int n0 = m.Rows;
        var g0 = GramMatrix.OfRows(m, parallel: false);
        var alive = Enumerable.Range(0, n0).ToList();
        while (alive.Count > keep)
        {
            var losses = LeaveOneOutLosses(g0, n0, alive);
            int best = 0;
            for (int a = 1; a < losses.Length; a++) if (losses[a] < losses[best]) best = a;
            alive.RemoveAt(best);
        }
        return alive.ToArray();
    }

    /// <summary>Loss of the nuclear norm when each row of <paramref name="alive"/> is removed alone.</summary>
    internal static double[] LeaveOneOutLosses(double[] g0, int n0, IReadOnlyList<int> alive)
    {
        int n = alive.Count;
        var g = Matrix<double>.Build.Dense(n, n, (i, j) => g0[alive[i] * n0 + alive[j]]);
        var evd = g.Evd(Symmetricity.Symmetric);
        var lambda = new double[n];
        double lmax = 0;
        for (int i = 0; i < n; i++) { lambda[i] = Math.Max(evd.EigenValues[i].Real, 0); lmax = Math.Max(lmax, lambda[i]); }
        var losses = new double[n];
        if (!(lmax > 0)) return losses;
        var u = evd.EigenVectors;
        double sigma1 = Math.Sqrt(lmax);
        const int perDecade = 10;
        double h = Math.Log(10) / perDecade;
        int nodes = 14 * perDecade + 1;
        double tLow = sigma1 * 1e-9, tHigh = sigma1 * 1e5;
        var inv = new double[n];
        var w = new double[n];
        for (int j = 0; j < n; j++)
        {
            double m1 = 0, m2 = 0;
            for (int i = 0; i < n; i++) { w[i] = u[j, i] * u[j, i]; m1 += w[i] * lambda[i]; m2 += w[i] * lambda[i] * lambda[i]; }
            double acc = 0;
            for (int k = 0; k < nodes; k++)
            {
                double t = tLow * Math.Exp(h * k), s = t * t;
                double num = 0, den = 0;
                for (int i = 0; i < n; i++)
                {
                    double r = 1 / (lambda[i] + s);
                    num += w[i] * lambda[i] * r * r;
                    den += w[i] * r;
                }
                double phi = den > 0 ? num / den : 0;
                acc += h * t * phi * (k == 0 || k == nodes - 1 ? 0.5 : 1.0);
                if (k == 0) acc += t * phi;
            }
            acc += m1 / tHigh + (m1 * m1 - 2 * m2) / (3 * tHigh * tHigh * tHigh);
            losses[j] = 2 / Math.PI * acc;
        }
        return losses;
    }
}
