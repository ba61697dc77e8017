namespace OnnxSlim.Spectral.Tests;

public class SpectrumTests
{
    [Theory]
    [InlineData(40, 70)]    // wide
    [InlineData(70, 40)]    // tall (Gram on the column side)
    [InlineData(64, 64)]
    [InlineData(1, 9)]
    [InlineData(9, 1)]
    [InlineData(230, 300)]  // blocked tridiagonalisation path
    [InlineData(300, 230)]
    public void SingularValuesEqualMathNetSvd(int rows, int cols)
    {
        var m = new Synthetic(rows * 1000 + cols).Gaussian(rows, cols);
        var spectrum = FilterSpectrum.Compute(m);
        var reference = Synthetic.ReferenceSingularValues(m);
        Assert.Equal(Math.Min(rows, cols), spectrum.SingularValues.Length);
        for (int i = 0; i < reference.Length; i++)
            Assert.True(Math.Abs(reference[i] - spectrum.SingularValues[i]) <= 1e-9 * reference[0],
                $"σ[{i}]: {spectrum.SingularValues[i]} vs MathNet {reference[i]}");
        for (int i = 1; i < reference.Length; i++) Assert.True(spectrum.SingularValues[i] <= spectrum.SingularValues[i - 1]);
        Assert.Equal(reference.Sum(), spectrum.NuclearNorm, 1e-8 * reference.Sum());
        Assert.Equal(reference[0], spectrum.Sigma1, 1e-9 * reference[0]);
        Assert.Equal(cols < rows, spectrum.IsRankCapped);
    }

    [Fact]
    public void RankDeficientMatrixHasZeroTail()
    {
        var m = new Synthetic(3).LowRankPlusNoise(50, 80, 7, 0);
        var s = FilterSpectrum.Compute(m);
        Assert.True(s.SingularValues[6] > 1e-3 * s.Sigma1);
        Assert.True(s.SingularValues[7] < 1e-6 * s.Sigma1, $"σ8 = {s.SingularValues[7]}");
        Assert.Equal(7, s.EffectiveRank(1.0));
        Assert.Equal(7, s.CountAtOrAbove(1e-4));
    }

    [Fact]
    public void EffectiveRankIsSmallestPrefixReachingTheFraction()
    {
        var s = FilterSpectrum.FromSingularValues(4, 10, [4, 3, 2, 1]);
        Assert.Equal(10, s.NuclearNorm);
        Assert.Equal(1, s.EffectiveRank(0.4));
        Assert.Equal(2, s.EffectiveRank(0.41));
        Assert.Equal(3, s.EffectiveRank(0.9));
        Assert.Equal(4, s.EffectiveRank(0.95));
        Assert.Equal(4, s.EffectiveRank(1.0));
        Assert.Equal(2, s.CountAtOrAbove(0.75));
        Assert.Throws<ArgumentException>(() => s.EffectiveRank(0));
        Assert.Throws<ArgumentException>(() => s.EffectiveRank(1.5));
    }

    [Fact]
    public void DeadGroupHasZeroSpectrumWithoutNaN()
    {
        var m = new FilterMatrix(6, 4, new double[24]);
        var s = FilterSpectrum.Compute(m);
        Assert.True(s.IsZero);
        Assert.All(s.SingularValues, v => Assert.Equal(0, v));
        Assert.Equal(0, s.EffectiveRank(0.9));
        Assert.Equal(0, s.Normalized(0));
        Assert.Equal(0, s.CountAtOrAbove(0.1));
    }

    [Fact]
    public void ComputeAllMatchesComputeInInputOrder()
    {
        var syn = new Synthetic(11);
        var ms = new[] { syn.Gaussian(30, 50), syn.Gaussian(200, 20), syn.Gaussian(5, 5), syn.Gaussian(260, 270) };
        var all = FilterSpectrum.ComputeAll(ms);
        for (int i = 0; i < ms.Length; i++)
            Assert.Equal(FilterSpectrum.Compute(ms[i]).SingularValues, all[i].SingularValues);
    }

    [Fact]
    public void BadInputsNameTheValue()
    {
        var e = Assert.Throws<ArgumentException>(() => new FilterMatrix(2, 3, new double[5]));
        Assert.Contains("5", e.Message);
        e = Assert.Throws<ArgumentException>(() => new FilterMatrix(1, 2, [1, double.NaN]));
        Assert.Contains("NaN", e.Message);
        e = Assert.Throws<ArgumentException>(() => FilterSpectrum.FromSingularValues(3, 3, [1, -2, 0]));
        Assert.Contains("-2", e.Message);
        Assert.Throws<ArgumentException>(() => new FilterMatrix(2, 2, new double[4]).Row(2));
    }
}
