using MathNet.Numerics.LinearAlgebra;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

/// <summary>The two-stage (band, then bulge chasing) eigenvalues against known spectra and the one-stage reduction.</summary>
public class BandReductionTests
{
    // A = Q·diag(λ)·Qᵀ with a random orthogonal Q: clustered, repeated, zero and tiny eigenvalues beside large ones.
    private static (double[] A, double[] Lambda) Known(int n, int seed)
    {
        var syn = new Synthetic(seed);
        var lambda = new double[n];
        for (int i = 0; i < n; i++)
            lambda[i] = (i % 5) switch
            {
                0 => 0,                               // a fifth exactly zero (rank-deficient Gram)
                1 => 1.0,                             // a cluster of equal values
                2 => 1.0 + 1e-9 * i,                  // and values just beside it
                3 => 50 * Math.Abs(syn.Gauss()),
                _ => 1e-4 * Math.Abs(syn.Gauss()),
            };
        lambda[0] = 1000;
        var g = Matrix<double>.Build.Dense(n, n, (_, _) => syn.Gauss());
        var q = g.QR().Q;
        var a = (q * Matrix<double>.Build.DiagonalOfDiagonalArray(lambda) * q.Transpose()).ToRowMajorArray();
        for (int i = 0; i < n; i++) for (int j = 0; j < i; j++) a[i * n + j] = a[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
        Array.Sort(lambda); Array.Reverse(lambda);
        return (a, lambda);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(33)]
    [InlineData(64)]
    [InlineData(97)]
    [InlineData(161)]
    [InlineData(517)]   // parallel products, not a multiple of the bandwidth
    public void EigenvaluesMatchAKnownSpectrum(int n)
    {
        var (a, lambda) = Known(n, 7 + n);
        var copy = (double[])a.Clone();
        var got = BandReduction.Eigenvalues(a, n, parallel: true);
        Assert.Equal(copy, a); // the input is not written
        Assert.Equal(n, got.Length);
        double tol = 1e-5 * lambda[0];
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(got[i] - lambda[i]) <= tol, $"n={n} λ[{i}] = {got[i]}, expected {lambda[i]} (tolerance {tol})");
    }

    [Fact]
    public void MatchesTheOneStageFloat32ReductionOnAGramAndIgnoresTheLowerTriangle()
    {
        const int n = 300, cols = 420;
        var syn = new Synthetic(3);
        var x = new double[n * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(syn.Gauss() * (1 + (i / cols) % 3));
        var a = new double[n * n];
        Gemm.GramOfRows(x, n, cols, a, parallel: false);
        var oneStage = SymmetricTridiagonal.Reduce((double[])a.Clone(), n, parallel: false, singleProducts: true).Eigenvalues();
        var exact = SymmetricTridiagonal.Reduce((double[])a.Clone(), n, parallel: false).Eigenvalues();
        for (int i = 0; i < n; i++) for (int j = 0; j < i; j++) a[i * n + j] = double.NaN; // only the upper triangle is read
        var band = BandReduction.Eigenvalues(a, n, parallel: false);
        double tol = 1e-5 * exact[0];
        for (int i = 0; i < n; i++)
        {
            Assert.True(Math.Abs(band[i] - exact[i]) <= tol, $"λ[{i}] = {band[i]}, float64 one-stage {exact[i]}");
            Assert.True(Math.Abs(band[i] - oneStage[i]) <= tol, $"λ[{i}] = {band[i]}, float32 one-stage {oneStage[i]}");
        }
    }

    [Fact]
    public void RepeatsItsBits()
    {
        var (a, _) = Known(600, 11);
        Assert.Equal(BandReduction.Eigenvalues(a, 600, parallel: true), BandReduction.Eigenvalues(a, 600, parallel: true));
    }

    [Fact]
    public void RejectsAShortBuffer() =>
        Assert.Throws<ArgumentException>(() => BandReduction.Eigenvalues(new double[8], 3, parallel: false));
}
