using OnnxSlim.Spectral;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Bench;

/// <summary>
/// Synthetic weights with a trained-looking spectrum: A = U·diag(s)·V with Gaussian factors and
/// s_i = e^(−4i/r) + 0.02, rows rescaled by e^(0.3·N(0,1)) (BN folding), plus a few near-copies.
/// </summary>
internal static class Synthesis
{
    public static FilterMatrix[] Build(IReadOnlyList<GroupShape> groups, int seed)
    {
        var result = new FilterMatrix[groups.Count];
        Parallel.For(0, groups.Count, i => result[i] = One(groups[i].Rows, groups[i].Cols, seed * 7919 + i));
        return result;
    }

    private static FilterMatrix One(int n, int d, int seed)
    {
        var rng = new Random(seed);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        int r = Math.Min(n, d);
        var u = new double[n * r];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < r; k++)
                u[i * r + k] = Gauss() * (Math.Exp(-4.0 * k / r) + 0.02);
        var v = new double[r * d];
        for (int i = 0; i < v.Length; i++) v[i] = Gauss() / Math.Sqrt(d);
        var a = new double[n * d];
        Gemm.Multiply(n, d, r, 1.0, u, r, false, v, d, false, a, d);
        for (int i = 0; i < n; i++)
        {
            double scale = Math.Exp(0.3 * Gauss());
            for (int j = 0; j < d; j++) a[i * d + j] *= scale;
        }
        for (int c = 0; c < n / 20; c++) // 5% near-copies of other filters
        {
            int dst = rng.Next(n), src = rng.Next(n);
            for (int j = 0; j < d; j++) a[dst * d + j] = a[src * d + j] * (1 + 0.05 * Gauss());
        }
        return new FilterMatrix(n, d, a);
    }
}
