using System.Numerics.Tensors;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

/// <summary>The blocked Cholesky factorisation: its sums, not only its accuracy, are fixed (the reconstruction's weights are reproducible bit for bit).</summary>
public class CholeskyTests
{
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

    /// <summary>The textbook unblocked factorisation, column by column, each entry's sum in index order.</summary>
    private static double[] Plain(double[] a, int n)
    {
        var l = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            double d = a[j * n + j];
            for (int k = 0; k < j; k++) d -= l[j * n + k] * l[j * n + k];
            l[j * n + j] = Math.Sqrt(d);
            for (int i = j + 1; i < n; i++)
            {
                double s = a[i * n + j];
                for (int k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
                l[i * n + j] = s / l[j * n + j];
            }
        }
        return l;
    }

    [Theory]
    [InlineData(95)]    // one panel, no trailing update
    [InlineData(301)]   // three panels and a partial one; block rows of 96 and 13 (edge tiles in both directions)
    [InlineData(700)]   // panels and trailing updates large enough to run over the cores
    public void Factor_matches_the_unblocked_factor_and_rebuilds_the_matrix(int n)
    {
        // The panel below each diagonal block is a product with the block's inverse, not a substitution: its rounding is
        // the unblocked factor's to a few ulps of the largest entry, no more.
        var a = Spd(n, n + 40, n);
        var l = (double[])a.Clone();
        Assert.True(Cholesky.Factor(l, n));
        var plain = Plain(a, n);
        double scale = 0, worst = 0, rebuilt = 0, aScale = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                scale = Math.Max(scale, Math.Abs(plain[i * n + j]));
                worst = Math.Max(worst, Math.Abs(plain[i * n + j] - l[i * n + j]));
                aScale = Math.Max(aScale, Math.Abs(a[i * n + j]));
                rebuilt = Math.Max(rebuilt, Math.Abs(a[i * n + j] - TensorPrimitives.Dot(l.AsSpan(i * n, j + 1), l.AsSpan(j * n, j + 1))));
            }
        Assert.True(worst <= 1e-13 * scale, $"largest difference from the unblocked factor {worst / scale:0.0e0} of its largest entry");
        Assert.True(rebuilt <= 1e-13 * aScale, $"L·Lᵀ differs from A by {rebuilt / aScale:0.0e0} of its largest entry");
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
