using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning.Tests;

/// <summary>The latency target's measured parts that need no timing: the width step rule and the checked allocation.</summary>
public sealed class LatencyTargetTests
{
    private static readonly int[] Counts = [.. Enumerable.Range(32, 33)];

    [Theory]
    [InlineData(16)]
    [InlineData(8)]
    [InlineData(32)]
    public void StepOfFindsTheBlockAKernelPadsTo(int block)
    {
        // Cost of a kernel that runs ⌈k/block⌉·block channels, 3% noise.
        var rng = new Random(block);
        var ms = Counts.Select(k => (0.2 + (k + block - 1) / block * block * 0.01) * (1 + 0.03 * (rng.NextDouble() - 0.5))).ToArray();
        Assert.Equal(block, LatencyMeasurement.StepOf(Counts, ms));
    }

    [Fact]
    public void StepOfIsOneForACostInProportion()
    {
        var rng = new Random(1);
        var ms = Counts.Select(k => (0.2 + k * 0.01) * (1 + 0.02 * (rng.NextDouble() - 0.5))).ToArray();
        Assert.Equal(1, LatencyMeasurement.StepOf(Counts, ms));
    }

    [Fact]
    public void WidthsAreQuartersInStepsEndingAtTheWhole()
    {
        Assert.Equal([64, 128, 192, 256], LatencyMeasurement.Widths(256, 16));
        Assert.Equal([16, 32, 48, 56], LatencyMeasurement.Widths(56, 16)); // ¾·56 = 42 → 48; never the whole twice
        Assert.Equal([16, 24], LatencyMeasurement.Widths(24, 16));
        Assert.Equal([196, 392, 588, 784], LatencyMeasurement.Widths(784, 49)); // a flattened axis: whole channels of 49 elements
    }

    /// <summary>One group of 100 channels whose latency the model thinks proportional; allocations by the real solver.</summary>
    private static Func<double, KeepAllocation> Allocator(LatencyModel model)
    {
        var spectrum = FilterSpectrum.FromSingularValues(100, 100, [.. Enumerable.Range(0, 100).Select(i => 100.0 - i)]);
        var groups = new[] { new PlanningGroup(100, spectrum, 1, false) };
        return r => new BudgetSolver().Solve(groups, null, null, BudgetTarget.Latency, r, 1, model);
    }

    [Fact]
    public void ChecksCorrectAModelThatMissesTheRealLatency()
    {
        // The real model has 2 ms the latency model does not see, next to 8 ms that it does: pruning the 8 ms by half
        // gives (4 + 2)/10 = 60%, not 50%. The check measures that and solves again until the real reduction is 50%.
        var model = new LatencyModel([new LayerLatency("conv", 8, new KeptChannels(0, [(0, 1.0)]), WidthCurve.Linear(100))], 0);
        var measured = new List<int>();
        double Real(int[] keep) { measured.Add(keep[0]); return (8 * keep[0] / 100.0 + 2) / 10; }
        var target = new LatencyTarget(model, maxChecks: 2, Real);
        var plan = target.Allocate(Allocator(model), 0.5);
        Assert.Equal(2, target.Checks.Count);
        Assert.Equal(0.5, target.Checks[0].PredictedReduction, 2);
        Assert.Equal(0.4, target.Checks[0].MeasuredReduction, 2);
        Assert.InRange(1 - Real(plan.Keep), 0.49, 0.51); // k ≈ 37.5
        Assert.InRange(plan.Keep[0], 37, 38);
    }

    [Fact]
    public void NoCheckWithoutAMeasurementAndNoSecondWhenTheFirstHits()
    {
        var model = new LatencyModel([new LayerLatency("conv", 8, new KeptChannels(0, [(0, 1.0)]), WidthCurve.Linear(100))], 0);
        var trusted = new LatencyTarget(model, maxChecks: 2);
        Assert.Equal(50, trusted.Allocate(Allocator(model), 0.5).Keep[0]);
        Assert.Empty(trusted.Checks);
        var exact = new LatencyTarget(model, maxChecks: 2, keep => keep[0] / 100.0);
        Assert.Equal(50, exact.Allocate(Allocator(model), 0.5).Keep[0]);
        Assert.Single(exact.Checks);
    }
}
