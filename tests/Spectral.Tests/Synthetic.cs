using MathNet.Numerics.LinearAlgebra;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Spectral.Tests;

/// <summary>Seeded synthetic filter matrices.</summary>
internal sealed class Synthetic(int seed)
{
    private readonly Random _rng = new(seed);

    public double Gauss() => StandardNormal.Next(_rng);

    public int Next(int max) => _rng.Next(max);

    public FilterMatrix Gaussian(int rows, int cols)
    {
        var a = new double[rows * cols];
        for (int i = 0; i < a.Length; i++) a[i] = Gauss();
        return new FilterMatrix(rows, cols, a);
    }

    /// <summary>Rank-r product plus small isotropic noise.</summary>
    public FilterMatrix LowRankPlusNoise(int rows, int cols, int rank, double noise)
    {
        var u = new double[rows * rank];
        var v = new double[rank * cols];
        for (int i = 0; i < u.Length; i++) u[i] = Gauss();
        for (int i = 0; i < v.Length; i++) v[i] = Gauss();
        var a = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double s = 0;
                for (int k = 0; k < rank; k++) s += u[i * rank + k] * v[k * cols + j];
                a[i * cols + j] = s + noise * Gauss();
            }
        return new FilterMatrix(rows, cols, a);
    }

    /// <summary>
    /// <paramref name="cores"/> N(0,1) filters; every other row copies a random core plus N(0, noise²);
    /// rows shuffled. <paramref name="family"/>[row] is the core it belongs to.
    /// </summary>
    public FilterMatrix Families(int rows, int cols, int cores, double noise, out int[] family)
    {
        var core = new double[cores * cols];
        for (int i = 0; i < core.Length; i++) core[i] = Gauss();
        var fam = new int[rows];
        var a = new double[rows * cols];
        var perm = Enumerable.Range(0, rows).ToArray();
        for (int i = rows - 1; i > 0; i--) { int k = _rng.Next(i + 1); (perm[i], perm[k]) = (perm[k], perm[i]); }
        for (int r = 0; r < rows; r++)
        {
            int f = r < cores ? r : _rng.Next(cores);
            int dst = perm[r];
            fam[dst] = f;
            for (int j = 0; j < cols; j++)
                a[dst * cols + j] = core[f * cols + j] + (r < cores ? 0 : noise * Gauss());
        }
        family = fam;
        return new FilterMatrix(rows, cols, a);
    }

    /// <summary>Singular values of the rows by MathNet's plain SVD (the reference).</summary>
    public static double[] ReferenceSingularValues(FilterMatrix m)
    {
        var mat = Matrix<double>.Build.Dense(m.Rows, m.Cols, (i, j) => m.Row(i)[j]);
        return mat.Svd(computeVectors: false).S.ToArray();
    }

    public static double NuclearNorm(FilterMatrix m, int[] rows) => ReferenceSingularValues(m.SelectRows(rows)).Sum();
}
