using System.Numerics.Tensors;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

/// <summary>The blocked Cholesky factorisation: its sums, not only its accuracy, are fixed (the reconstruction's weights are reproducible bit for bit).</summary>
public class CholeskyTests
{
    private const int Block = 96;

    /// <summary>A·Aᵀ/cols + I for a Gaussian A (n × cols): positive definite, of mixed scale.</summary>
    private static double[] Spd(int n, int cols, int seed)
    {
        var syn = new Synthetic(seed);
        var x = new double[n * cols];
        for (int i = 0; i < x.Length; i++) x[i] = syn.Gauss() * (1 + i / cols % 4);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
                a[i * n + j] = a[j * n + i] = TensorPrimitives.Dot(x.AsSpan(i * cols, cols), x.AsSpan(j * cols, cols)) / cols + (i == j ? 1 : 0);
        return a;
    }

    /// <summary>
    /// The blocked factorisation written plainly: per panel of 96 columns, the diagonal block and the rows below it by dot
    /// products, then every block row of the trailing triangle loses its product with the panel as one GEMM call of its own.
    /// </summary>
    private static void Reference(double[] a, int n)
    {
        for (int k0 = 0; k0 < n; k0 += Block)
        {
            int k1 = Math.Min(n, k0 + Block), kb = k1 - k0;
            for (int i = k0; i < n; i++)
                for (int j = k0; j <= Math.Min(i, k1 - 1); j++)
                {
                    double s = a[i * n + j] - TensorPrimitives.Dot(new ReadOnlySpan<double>(a, i * n + k0, j - k0), new ReadOnlySpan<double>(a, j * n + k0, j - k0));
                    a[i * n + j] = i == j ? Math.Sqrt(s) : s / a[j * n + j];
                }
            for (int i0 = k1; i0 < n; i0 += Block)
            {
                int rows = Math.Min(Block, n - i0);
                Gemm.Multiply(rows, i0 + rows - k1, kb, -1.0, a.AsSpan(i0 * n + k0), n, false, a.AsSpan(k1 * n + k0), n, true, a.AsSpan(i0 * n + k1), n);
            }
        }
    }

    [Theory]
    [InlineData(95)]    // one panel, no trailing update
    [InlineData(301)]   // three panels and a partial one; block rows of 96 and 13 (edge tiles in both directions)
    [InlineData(700)]   // trailing updates large enough to run over the cores
    public void Factor_gives_the_plain_blocked_sums_bit_for_bit(int n)
    {
        var a = Spd(n, n + 40, n);
        var expected = (double[])a.Clone();
        Reference(expected, n);
        Assert.True(Cholesky.Factor(a, n));
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
                Assert.True(expected[i * n + j] == a[i * n + j], $"L[{i},{j}]: {a[i * n + j]:R}, expected {expected[i * n + j]:R}");
    }

    [Fact]
    public void Factor_refuses_a_matrix_that_is_not_positive_definite_past_the_first_panel()
    {
        const int n = 200;
        var a = Spd(n, n, 7);
        // An entry larger than the geometric mean of its two diagonal entries: a 2×2 minor that is indefinite, in the second panel.
        int i = 150, j = 151;
        a[j * n + i] = a[i * n + j] = Math.Sqrt(a[i * n + i] * a[j * n + j]) * 1.5;
        Assert.False(Cholesky.Factor(a, n));
    }
}
