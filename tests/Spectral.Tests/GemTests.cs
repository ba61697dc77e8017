using Xunit.Abstractions;

namespace OnnxSlim.Spectral.Tests;

public class GemTests(ITestOutputHelper output)
{
    public static TheoryData<string, int, double> Cases => new()
    {
        { "gauss", 32, 0.25 }, { "gauss", 64, 0.5 }, { "gauss", 128, 0.75 }, { "gauss", 96, 0.25 },
        { "lowrank", 64, 0.25 }, { "lowrank", 96, 0.5 }, { "lowrank", 128, 0.25 },
        { "families", 64, 0.5 }, { "families", 128, 0.3 }, { "families", 128, 0.6 },
        { "tall", 64, 0.25 }, { "tall", 128, 0.5 },
    };

    private static FilterMatrix Make(string kind, int n, int seed) => kind switch
    {
        "gauss" => new Synthetic(seed).Gaussian(n, 2 * n),
        "lowrank" => new Synthetic(seed).LowRankPlusNoise(n, 2 * n, n / 4, 0.05),
        "families" => new Synthetic(seed).Families(n, 2 * n, (int)(0.6 * n), 0.1, out _),
        _ => new Synthetic(seed).Gaussian(n, n / 4),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void FastGemKeepsNuclearNormWithinHalfPercentOfExactGreedy(string kind, int n, double keepFraction)
    {
        var m = Make(kind, n, n + (int)(keepFraction * 100));
        int keep = (int)(n * keepFraction);
        var exact = new ExactGreedySelector().Select(m, keep);
        var fast = new GemSelector().Select(m, keep);
        var l2 = new NormSelector(FilterNorm.L2).Select(m, keep);
        double e = Synthetic.NuclearNorm(m, exact), f = Synthetic.NuclearNorm(m, fast), b = Synthetic.NuclearNorm(m, l2);
        output.WriteLine($"{kind} {n} keep {keep}: gem/exact = {f / e:F5}, l2/exact = {b / e:F5}");
        Assert.True(f >= 0.995 * e, $"fast GEM kept {f}, exact greedy {e} (ratio {f / e:F5})");
        AssertValidSelection(fast, keep, n);
    }

    [Fact]
    public void ExactDuplicatesKeepOneOfEachPair()
    {
        var syn = new Synthetic(21);
        var basis = syn.Gaussian(20, 50);
        var rows = Enumerable.Range(0, 40).Select(i => i % 20).ToArray(); // every row twice
        var m = basis.SelectRows(rows);
        var kept = new GemSelector().Select(m, 20);
        Assert.Equal(20, kept.Select(r => rows[r]).Distinct().Count());
    }

    [Fact]
    public void DegenerateInputs()
    {
        var m = new Synthetic(2).Gaussian(10, 30);
        Assert.Equal(Enumerable.Range(0, 10), new GemSelector().Select(m, 10));
        var one = new GemSelector().Select(m, 1);
        Assert.Single(one);
        var zero = new FilterMatrix(8, 3, new double[24]);
        AssertValidSelection(new GemSelector().Select(zero, 3), 3, 8);
        var e = Assert.Throws<ArgumentException>(() => new GemSelector().Select(m, 11));
        Assert.Contains("11", e.Message);
        Assert.Throws<ArgumentException>(() => new GemSelector().Select(m, 0));
        // a zero row is the first to go
        var data = new Synthetic(3).Gaussian(6, 10).Data.ToArray();
        Array.Clear(data, 2 * 10, 10);
        Assert.DoesNotContain(2, new GemSelector().Select(new FilterMatrix(6, 10, data), 5));
    }

    [Fact]
    public void LargeGroupIsFastAndValid()
    {
        var m = new Synthetic(9).Families(600, 900, 400, 0.1, out var family);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var kept = new GemSelector().Select(m, 400);
        output.WriteLine($"600×900 → 400 in {sw.ElapsedMilliseconds} ms, unique families {kept.Select(r => family[r]).Distinct().Count()}");
        AssertValidSelection(kept, 400, 600);
        Assert.Equal(400, kept.Select(r => family[r]).Distinct().Count());
    }

    [Fact]
    public void ReusingTheSpectrumFactorisationGivesTheSameSelection()
    {
        // FilterSpectrum.Compute leaves the Gram and its reduction on large matrices for GEM to reuse.
        var data = new Synthetic(31).Families(300, 400, 200, 0.1, out _).Data.ToArray();
        var fresh = new GemSelector().Select(new FilterMatrix(300, 400, (double[])data.Clone()), 210);
        var m = new FilterMatrix(300, 400, data);
        var spectrum = FilterSpectrum.Compute(m);
        Assert.Equal(300, spectrum.Width);
        Assert.Equal(fresh, new GemSelector().Select(m, 210));
        Assert.Equal(fresh, new GemSelector().Select(m, 210)); // cache consumed: recomputed, same answer
    }

    [Fact]
    public void DiffuseGroupTakesASmallTailInTheLastEpochInsteadOfAnotherFactorisation()
    {
        // 300 rows, keep 160, a quarter per epoch: 75, then 57 (225 → 168), then 8 rows more; with the tail rule
        // the second epoch takes 65 and ends at 160. Only groups wider than DiffuseMinRows (here 256) are affected.
        var m = new Synthetic(31).Gaussian(300, 600);
        var plain = new GemSelector { DiffuseMinRows = 256, DiffuseTail = 0 }.Select(m, 160, out int plainEpochs);
        var merged = new GemSelector { DiffuseMinRows = 256, DiffuseTail = 0.25 }.Select(m, 160, out int mergedEpochs);
        var narrow = new GemSelector { DiffuseMinRows = 300, DiffuseTail = 0.25 }.Select(m, 160, out int narrowEpochs);
        Assert.Equal(3, plainEpochs);
        Assert.Equal(2, mergedEpochs);
        Assert.Equal(plain, narrow); // not wider than DiffuseMinRows: unchanged
        Assert.True(narrowEpochs >= 3, $"{narrowEpochs} epochs");
        AssertValidSelection(merged, 160, 300);
        double p = Synthetic.NuclearNorm(m, plain), q = Synthetic.NuclearNorm(m, merged);
        output.WriteLine($"kept nuclear norm: 3 epochs {p:F4}, 2 epochs {q:F4} ({(q - p) / p:P4})");
        Assert.True(q >= 0.999 * p, $"two epochs kept {q}, three {p}");
    }

    [Theory]
    [InlineData(160)] // first budget 75: a prefix of the started epoch
    [InlineData(250)] // 50: a shorter prefix
    [InlineData(210)] // 90 (the tail rule): the started epoch continues past its 75
    [InlineData(300)] // keeps all: the started epoch is stopped and freed
    public void FirstEpochStartedBeforeTheKeepCountSelectsTheSameRows(int keep)
    {
        var gem = new GemSelector { DiffuseMinRows = 256 };
        var plain = new Synthetic(37).Gaussian(300, 600);
        FilterSpectrum.Compute(plain); // leaves the factorisation GEM reuses
        var expected = gem.Select(plain, keep, out int plainEpochs);

        var started = new Synthetic(37).Gaussian(300, 600);
        FilterSpectrum.Compute(started);
        gem.StartFirstEpoch(started);
        Assert.NotNull(started.PeekFactorization()?.FirstEpoch);
        var actual = new GemSelector { DiffuseMinRows = 256 }.Select(started, keep, out int startedEpochs); // equal settings, another instance
        Assert.Equal(expected, actual);
        Assert.Equal(plainEpochs, startedEpochs);
        Assert.Null(started.PeekFactorization());
    }

    [Fact]
    public void AKeptGramWithoutItsReductionSelectsTheSameRowsAndStartsNoFirstEpoch()
    {
        // As an eigenvalues-only spectrum (FilterSpectrum.EigenvaluesOnly) leaves it: the Gram, no reduction. GEM then
        // reduces the Gram itself, which must give the bits the kept reduction gives.
        var gem = new GemSelector { DiffuseMinRows = 256 };
        var plain = new Synthetic(43).Gaussian(300, 600);
        FilterSpectrum.Compute(plain);
        var expected = gem.Select(plain, 170, out int plainEpochs);

        var bare = new Synthetic(43).Gaussian(300, 600);
        var gram = GramMatrix.OfRows(bare, parallel: true);
        bare.KeepFactorization(new GramFactorization(new LowerGram(gram, 300), null));
        gem.StartFirstEpoch(bare);
        Assert.Null(bare.PeekFactorization()!.FirstEpoch);
        Assert.Equal(expected, gem.Select(bare, 170, out int bareEpochs));
        Assert.Equal(plainEpochs, bareEpochs);
    }

    [Fact]
    public void StartedFirstEpochIsStoppedWhenTheCacheIsReleased()
    {
        var m = new Synthetic(41).Gaussian(300, 600);
        FilterSpectrum.Compute(m);
        new GemSelector { DiffuseMinRows = 256 }.StartFirstEpoch(m);
        var first = m.PeekFactorization()!.FirstEpoch!;
        m.ReleaseCache();
        Assert.True(first.Work.IsCompleted);
        Assert.True(first.Cancel.IsCancellationRequested);
        // Other settings than the started epoch's: selected from scratch, as without it.
        var n = new Synthetic(41).Gaussian(300, 600);
        FilterSpectrum.Compute(n);
        new GemSelector { DiffuseMinRows = 256, BatchFraction = 0.5 }.StartFirstEpoch(n);
        Assert.Equal(new GemSelector().Select(new Synthetic(41).Gaussian(300, 600), 150), new GemSelector().Select(n, 150));
    }

    [Fact]
    public void EpochsStartedBesideTheSpectraAreStoppedWhenAnotherGroupFails()
    {
        // Group 0 (built first: the larger expected cost) starts its first epoch; group 1 fails. Nothing may go on
        // computing after the failure: the started epoch is cancelled and the factorisation released.
        FilterMatrix? wide = null;
        var gem = new GemSelector { DiffuseMinRows = 256 };
        Assert.ThrowsAny<Exception>(() => FilterSpectrum.ComputeAll(2,
            i => i == 0 ? wide = new Synthetic(41).Gaussian(300, 600) : throw new InvalidOperationException("a bad group"),
            i => i == 0 ? 2 : 1, _ => gem));
        Assert.NotNull(wide);
        Assert.Null(wide.PeekFactorization());
    }

    internal static void AssertValidSelection(int[] kept, int keep, int rows)
    {
        Assert.Equal(keep, kept.Length);
        for (int i = 0; i < kept.Length; i++)
        {
            Assert.InRange(kept[i], 0, rows - 1);
            if (i > 0) Assert.True(kept[i] > kept[i - 1], "indices must be sorted ascending and distinct");
        }
    }
}
