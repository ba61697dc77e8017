using System.Collections.Concurrent;
using MathNet.Numerics.LinearAlgebra;

namespace OnnxSlim.Spectral.Bench;

/// <summary>The reference cost: MathNet's plain Svd() (no vectors) of every matrix, largest first, in parallel.</summary>
internal static class NaiveSvd
{
    public static double[][] Spectra(IReadOnlyList<FilterMatrix> matrices)
    {
        var order = Enumerable.Range(0, matrices.Count)
            .OrderByDescending(i => (double)matrices[i].Rows * matrices[i].Cols * Math.Min(matrices[i].Rows, matrices[i].Cols)).ToArray();
        var sv = new double[matrices.Count][];
        Parallel.ForEach(Partitioner.Create(order, EnumerablePartitionerOptions.NoBuffering), i =>
        {
            var m = matrices[i];
            sv[i] = Matrix<double>.Build.Dense(m.Cols, m.Rows, m.Data.ToArray()).Transpose().Svd(computeVectors: false).S.ToArray();
        });
        return sv;
    }
}
