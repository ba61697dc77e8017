using System.Numerics.Tensors;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>In-place Gauss–Jordan inverse of a symmetric positive definite matrix (no pivoting needed for SPD).</summary>
internal static class SymmetricInverse
{
    public static double[] Invert(double[] a, int n)
    {
        if (a.Length != n * n) throw new ArgumentException($"matrix holds {a.Length} values, {n}×{n} needs {n * n}", nameof(a));
        var pivotRow = new double[n];
        for (int k = 0; k < n; k++)
        {
            double p = a[k * n + k];
            if (!(p > 0)) throw new ArgumentException($"matrix is not positive definite (pivot {k} = {p})", nameof(a));
            var rowK = new Span<double>(a, k * n, n);
            rowK[k] = 1;
            TensorPrimitives.Divide(rowK, p, rowK);
            rowK.CopyTo(pivotRow);
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = n >= 256 ? -1 : 1 }, i =>
            {
                if (i == k) return;
                var rowI = new Span<double>(a, i * n, n);
                double f = rowI[k];
                if (f == 0) return;
                rowI[k] = 0;
                TensorPrimitives.MultiplyAdd(pivotRow, -f, rowI, rowI);
            });
        }
        return a;
    }
}
