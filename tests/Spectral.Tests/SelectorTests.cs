namespace OnnxSlim.Spectral.Tests;

public class SelectorTests
{
    [Theory]
    [InlineData("gem", typeof(GemSelector))]
    [InlineData("l1", typeof(NormSelector))]
    [InlineData("L2", typeof(NormSelector))]
    [InlineData("random", typeof(RandomSelector))]
    public void FactoryKnowsTheCriteria(string name, Type type) => Assert.IsType(type, FilterSelectors.Create(name, 1));

    [Fact]
    public void FactoryRejectsUnknownCriterionByName()
    {
        var e = Assert.Throws<ArgumentException>(() => FilterSelectors.Create("magic", 0));
        Assert.Contains("magic", e.Message);
    }

    [Fact]
    public void NormSelectorsKeepTheLargestRows()
    {
        // row norms: L1 = 3, 4, 2.9 ; L2 = 3, 2, 2.9 (row 1 is spread out)
        var m = new FilterMatrix(3, 4, [3, 0, 0, 0, 1, 1, 1, 1, 2.9, 0, 0, 0]);
        Assert.Equal([0, 1], new NormSelector(FilterNorm.L1).Select(m, 2));
        Assert.Equal([0, 2], new NormSelector(FilterNorm.L2).Select(m, 2));
    }

    [Fact]
    public void RandomSelectorIsDeterministicPerSeed()
    {
        var m = new Synthetic(1).Gaussian(50, 3);
        var a = new RandomSelector(7).Select(m, 20);
        Assert.Equal(a, new RandomSelector(7).Select(m, 20));
        Assert.NotEqual(a, new RandomSelector(8).Select(m, 20));
        GemTests.AssertValidSelection(a, 20, 50);
    }

    [Fact]
    public void SelectAllRunsEveryGroup()
    {
        var syn = new Synthetic(4);
        var ms = new[] { syn.Gaussian(40, 60), syn.Gaussian(12, 5), syn.Gaussian(30, 30) };
        var kept = FilterSelectors.SelectAll(new GemSelector(), ms, [20, 12, 7]);
        GemTests.AssertValidSelection(kept[0], 20, 40);
        Assert.Equal(Enumerable.Range(0, 12), kept[1]);
        Assert.Equal(new GemSelector().Select(ms[2], 7), kept[2]);
    }
}
