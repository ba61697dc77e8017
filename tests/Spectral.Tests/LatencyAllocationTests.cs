using Xunit.Abstractions;

namespace OnnxSlim.Spectral.Tests;

/// <summary>The latency target's arithmetic: fake latency tables in, keep counts out.</summary>
public class LatencyAllocationTests(ITestOutputHelper output)
{
    /// <summary>σᵢ/σ₁ = (w − i)/w: a group whose every filter is a little less important than the previous one.</summary>
    private static FilterSpectrum Linear(int width) =>
        FilterSpectrum.FromSingularValues(width, width, [.. Enumerable.Range(0, width).Select(i => (double)(width - i))]);

    private static KeptChannels Group(int g) => new(0, [(g, 1.0)]);

    [Fact]
    public void WidthCurveRoundsUpToTheStepAndInterpolates()
    {
        var stairs = new WidthCurve([16, 32, 48, 64], [1, 2, 3, 4], step: 16);
        Assert.Equal(2, stairs.At(17), 12);   // 17 channels run as 32
        Assert.Equal(2, stairs.At(32), 12);
        Assert.Equal(3, stairs.At(33), 12);
        Assert.Equal(0.5, stairs.Ratio(20), 12);
        Assert.Equal(4, stairs.At(200), 12);  // never above the whole layer
        var smooth = new WidthCurve([25, 50, 100], [1, 3, 4]);
        Assert.Equal(1.4, smooth.At(30), 12);  // a fifth of the way from 25 to 50
        Assert.Equal(0.4, smooth.At(10), 12);  // below the first width: the line to (0, 0)
        Assert.Equal(0.25, WidthCurve.Linear(64).Ratio(16), 12);
        Assert.Throws<ArgumentException>(() => new WidthCurve([32, 16], [1, 2]));
        Assert.Throws<ArgumentException>(() => new WidthCurve([16], [-1]));
    }

    [Fact]
    public void LayerLatencyIsSeparableInItsTwoCounts()
    {
        // t(o, i) = t(O, I)·r_out(o)·r_in(i): 8 ms whole; half the outputs cost 0.6 of it, a quarter of the inputs 0.5.
        var layer = new LayerLatency("conv", 8, Group(0), new WidthCurve([32, 64], [6, 10]), new KeptChannels(16, [(1, 1.0)]), new WidthCurve([32, 64], [5, 10]));
        Assert.Equal(8, layer.At([64, 48]), 12);
        Assert.Equal(8 * 0.6 * 0.5, layer.At([32, 16]), 12); // inputs: 16 frozen + 16 kept = 32 of 64
        Assert.Equal([0, 1], layer.Groups.Order());
        var model = new LatencyModel([layer], fixedMilliseconds: 2);
        Assert.Equal(10, model.Milliseconds([64, 48]), 12);
        Assert.Equal(1, model.MaxGroup);
    }

    [Fact]
    public void StaircaseCostStopsAtTheStepThatMeetsTheBudget()
    {
        // One group of 64 whose only layer costs 1 ms per 16 channels started: halving the latency means 32, not 33.
        var groups = new[] { new PlanningGroup(64, Linear(64), MinKeep: 1, Fixed: false) };
        var latency = new LatencyModel([new LayerLatency("conv", 4, Group(0), new WidthCurve([16, 32, 48, 64], [1, 2, 3, 4], step: 16))], 0, step: 16);
        var plan = new BudgetSolver().Solve(groups, null, null, BudgetTarget.Latency, 0.5, roundTo: 1, latency);
        output.WriteLine($"keep {plan.Keep[0]}, achieved {plan.AchievedReduction:P1}");
        Assert.Equal(32, plan.Keep[0]);
        Assert.Equal(0.5, plan.AchievedReduction, 12);
        Assert.Equal(plan.AchievedReduction, plan.LatencyReduction, 12);
        Assert.True(double.IsNaN(plan.MacsReduction));
    }

    [Fact]
    public void TheThresholdStopsWhereTheLatencyTableSaysNotWhereMacsWould()
    {
        // Group 1's filters all matter more (σ/σ₁ ≥ 0.9) than most of group 0's, so the threshold takes group 0's first.
        // Latency: group 0's layer 6 ms, group 1's 2 ms, both in proportion. Halving 8 ms: 6·k₀/32 + 2 = 4, k₀ = 10.7:
        // the prefix keeping 11 lands at 49.2% (closer to 50% than 10's 51.6%). Priced in MACs where group 0's layer
        // is the cheap one (1 vs 3), the same threshold cannot stop before it has taken most of group 1 too.
        var flat = FilterSpectrum.FromSingularValues(32, 32, [.. Enumerable.Range(0, 32).Select(i => 1 - i / 320.0)]);
        var groups = new[] { new PlanningGroup(32, Linear(32), 1, false), new PlanningGroup(32, flat, 1, false) };
        var latency = new LatencyModel(
        [
            new LayerLatency("a", 6, Group(0), WidthCurve.Linear(32)),
            new LayerLatency("b", 2, Group(1), WidthCurve.Linear(32)),
        ], 0);
        var plan = new BudgetSolver().Solve(groups, null, null, BudgetTarget.Latency, 0.5, 1, latency);
        output.WriteLine($"latency: keep [{string.Join(", ", plan.Keep)}], achieved {plan.AchievedReduction:P2}");
        Assert.Equal([11, 32], plan.Keep);
        Assert.Equal(1 - (6 * 11 / 32.0 + 2) / 8, plan.AchievedReduction, 12);

        CostTerm[] macs = [new(0, -1, 1), new(1, -1, 3)];
        var byMacs = new BudgetSolver().Solve(groups, macs, null, BudgetTarget.Macs, 0.5, 1);
        output.WriteLine($"macs: keep [{string.Join(", ", byMacs.Keep)}], achieved {byMacs.AchievedReduction:P2}");
        Assert.True(byMacs.Keep[1] < 32, $"the MACs plan keeps {byMacs.Keep[1]} of group 1");
        Assert.True(byMacs.Keep[0] < plan.Keep[0]);
    }

    [Fact]
    public void FrozenPartsAreFixedCostAndLimitTheReachableReduction()
    {
        // A layer reading 16 frozen + k kept channels, and 6 ms outside any group: at most (4 − 4·17/80)/10 = 31.5% can go.
        var groups = new[] { new PlanningGroup(64, Linear(64), MinKeep: 1, Fixed: false) };
        var latency = new LatencyModel([new LayerLatency("fc", 4, null, null, new KeptChannels(16, [(0, 1.0)]), WidthCurve.Linear(80))], fixedMilliseconds: 6);
        var plan = new BudgetSolver().Solve(groups, null, null, BudgetTarget.Latency, 0.5, 1, latency);
        Assert.False(plan.Reachable);
        Assert.Equal(1, plan.Keep[0]);
        Assert.Equal((4 - 4 * 17 / 80.0) / 10, plan.MaxReduction, 12);
        Assert.Throws<ArgumentException>(() => new BudgetSolver().Solve(groups, null, null, BudgetTarget.Latency, 0.5, 1));
        var wrongGroup = new LatencyModel([new LayerLatency("x", 1, Group(3), WidthCurve.Linear(8))], 0);
        Assert.Contains("3", Assert.Throws<ArgumentException>(() => new BudgetSolver().Solve(groups, null, null, BudgetTarget.Latency, 0.5, 1, wrongGroup)).Message);
    }

    [Fact]
    public void UniformAllocationBudgetsOnLatencyToo()
    {
        var groups = new[] { new PlanningGroup(64, Linear(64), 1, false), new PlanningGroup(64, Linear(64), 1, false) };
        var latency = new LatencyModel([new LayerLatency("a", 3, Group(0), WidthCurve.Linear(64)), new LayerLatency("b", 1, Group(1), WidthCurve.Linear(64))], 0);
        var plan = new BudgetSolver().AllocateUniform(groups, null, null, BudgetTarget.Latency, 0.5, 1, latency);
        Assert.Equal([32, 32], plan.Keep);
        Assert.Equal(0.5, plan.AchievedReduction, 12);
    }
}
