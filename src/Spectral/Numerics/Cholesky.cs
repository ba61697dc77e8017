using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>Cholesky factorisation and solves for dense symmetric positive definite systems (row-major, float64).</summary>
public static class Cholesky
{
    private const int Block = 64;

    /// <summary>
    /// Overwrites the lower triangle of <paramref name="a"/> (n×n) with L, a = L·Lᵀ; false when a is not
    /// positive definite. Row-oriented (Crout): every entry is one contiguous dot product, and the rows of a
    /// block are independent against the columns finished before it, so that part runs in parallel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool Factor(double[] a, int n)
    {
        if (a.Length < (long)n * n) throw new ArgumentException($"matrix holds {a.Length} values, {n}×{n} needs {(long)n * n}");
        for (int i0 = 0; i0 < n; i0 += Block)
        {
            int i1 = Math.Min(n, i0 + Block);
            if (i0 > 0)
                Parallel.For(i0, i1, i =>
                {
                    for (int j = 0; j < i0; j++)
                    {
                        double s = a[i * n + j] - TensorPrimitives.Dot(new ReadOnlySpan<double>(a, i * n, j), new ReadOnlySpan<double>(a, j * n, j));
                        a[i * n + j] = s / a[j * n + j];
                    }
                });
            for (int i = i0; i < i1; i++)
                for (int j = i0; j <= i; j++)
                {
                    double s = a[i * n + j] - TensorPrimitives.Dot(new ReadOnlySpan<double>(a, i * n, j), new ReadOnlySpan<double>(a, j * n, j));
                    if (i == j)
                    {
                        if (!(s > 0) || !double.IsFinite(s)) return false;
                        a[i * n + i] = Math.Sqrt(s);
                    }
                    else a[i * n + j] = s / a[j * n + j];
                }
        }
        return true;
    }

    /// <summary>Solves L·Lᵀ·X = B in place for the m right-hand sides in the n×m row-major <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Solve(double[] l, int n, double[] b, int m)
    {
        if (b.Length < (long)n * m) throw new ArgumentException($"right-hand side holds {b.Length} values, {n}×{m} needs {(long)n * m}");
        // Row operations on whole rows of B: each step is a vectorised axpy over the m columns.
        for (int i = 0; i < n; i++)
        {
            var row = b.AsSpan(i * m, m);
            for (int j = 0; j < i; j++)
            {
                double f = l[i * n + j];
                if (f != 0) TensorPrimitives.MultiplyAdd(b.AsSpan(j * m, m), -f, row, row);
            }
            TensorPrimitives.Multiply(row, 1 / l[i * n + i], row);
        }
        for (int i = n - 1; i >= 0; i--)
        {
            var row = b.AsSpan(i * m, m);
            for (int j = i + 1; j < n; j++)
            {
                double f = l[j * n + i];
                if (f != 0) TensorPrimitives.MultiplyAdd(b.AsSpan(j * m, m), -f, row, row);
            }
            TensorPrimitives.Multiply(row, 1 / l[i * n + i], row);
        }
    }
}
