using Xunit.Abstractions;

namespace OnnxSlim.Spectral.Tests;

public class AllocationTests(ITestOutputHelper output)
{
    /// <summary>
    /// A small conv chain: stem (64 filters of a 1-channel 3×3 conv: 64×9, rank-capped), then
    /// 128×576 and 256×1152 with redundancy (low rank + noise), then a classifier on 256 channels.
    /// MACs per output position: stem 9·k0, conv2 9·k0·k1, conv3 9·k1·k2, fc 10·k2.
    /// </summary>
    private static (PlanningGroup[] Groups, CostTerm[] Macs, CostTerm[] Params) Chain(int minKeep = 1)
    {
        var syn = new Synthetic(77);
        var stem = syn.Gaussian(64, 9);
        var c2 = syn.LowRankPlusNoise(128, 576, 60, 0.3);
        var c3 = syn.LowRankPlusNoise(256, 1152, 100, 0.3);
        var spectra = FilterSpectrum.ComputeAll([stem, c2, c3]);
        var groups = new[]
        {
            new PlanningGroup(64, spectra[0], minKeep, false),
            new PlanningGroup(128, spectra[1], minKeep, false),
            new PlanningGroup(256, spectra[2], minKeep, false),
        };
        double hw = 32 * 32;
        var macs = new CostTerm[] { new(0, -1, 9 * hw), new(1, 0, 9 * hw / 4), new(2, 1, 9 * hw / 16), new(-1, 2, 10) };
        var pars = new CostTerm[] { new(0, -1, 9), new(1, 0, 9), new(2, 1, 9), new(-1, 2, 10) };
        return (groups, macs, pars);
    }

    private static double Reduction(CostTerm[] terms, PlanningGroup[] g, int[] keep) =>
        1 - CostTerm.Total(terms, keep) / CostTerm.Total(terms, g.Select(x => x.Width).ToArray());

    [Theory]
    [InlineData(BudgetTarget.Macs, 0.5)]
    [InlineData(BudgetTarget.Macs, 0.3)]
    [InlineData(BudgetTarget.Params, 0.6)]
    [InlineData(BudgetTarget.Filters, 0.4)]
    public void RankCappedStemKeepsFarMoreThanItsRank(BudgetTarget target, double cr)
    {
        var (groups, macs, pars) = Chain();
        var plan = new BudgetSolver().Solve(groups, macs, pars, target, cr, 1);
        output.WriteLine($"{target} {cr}: keep [{string.Join(", ", plan.Keep)}], τ {plan.Threshold:F3}, achieved {plan.AchievedReduction:F4}");
        Assert.True(plan.RankCapped[0]);
        Assert.False(plan.RankCapped[1] || plan.RankCapped[2]);
        int plainRule = groups[0].Spectrum!.CountAtOrAbove(plan.Threshold); // what σ/σ₁ ≥ τ alone would keep
        Assert.True(plainRule <= 9);
        Assert.True(plan.Keep[0] >= 24, $"stem keeps {plan.Keep[0]} of 64 (plain rule: {plainRule})");
        Assert.True(plan.Reachable);
        Assert.InRange(plan.AchievedReduction, cr - 0.01, cr + 0.01);
        double independent = target switch
        {
            BudgetTarget.Macs => Reduction(macs, groups, plan.Keep),
            BudgetTarget.Params => Reduction(pars, groups, plan.Keep),
            _ => 1 - plan.Keep.Sum() / 448.0,
        };
        Assert.Equal(independent, plan.AchievedReduction, 12);
        Assert.Equal(Reduction(macs, groups, plan.Keep), plan.MacsReduction, 12);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void RoundToGivesMultiplesAndStillMeetsTheBudget(int roundTo)
    {
        var (groups, macs, pars) = Chain(minKeep: 3);
        var plan = new BudgetSolver().Solve(groups, macs, pars, BudgetTarget.Macs, 0.5, roundTo);
        output.WriteLine($"round {roundTo}: keep [{string.Join(", ", plan.Keep)}], achieved {plan.AchievedReduction:F4}");
        for (int g = 0; g < groups.Length; g++)
        {
            Assert.True(plan.Keep[g] % roundTo == 0 || plan.Keep[g] == groups[g].Width, $"group {g} keeps {plan.Keep[g]}");
            Assert.InRange(plan.Keep[g], groups[g].MinKeep, groups[g].Width);
        }
        Assert.InRange(plan.AchievedReduction, 0.49, 0.51);
    }

    [Fact]
    public void PerGroupRoundToOverridesTheSolversAndStillMeetsTheBudget()
    {
        var (groups, macs, pars) = Chain(minKeep: 3);
        // Round only the wider groups, like the CLI's --round-to auto.
        var mixed = groups.Select(g => g with { RoundTo = g.Width >= 128 ? 8 : 1 }).ToArray();
        var plan = new BudgetSolver().Solve(mixed, macs, pars, BudgetTarget.Macs, 0.5, roundTo: 1);
        output.WriteLine($"mixed rounding: keep [{string.Join(", ", plan.Keep)}], achieved {plan.AchievedReduction:F4}");
        for (int g = 0; g < mixed.Length; g++)
            if (mixed[g].RoundTo == 8)
                Assert.True(plan.Keep[g] % 8 == 0 || plan.Keep[g] == mixed[g].Width, $"group {g} keeps {plan.Keep[g]}");
        Assert.Contains(mixed, g => g.RoundTo == 1);
        Assert.Contains(mixed, g => g.RoundTo == 8);
        Assert.InRange(plan.AchievedReduction, 0.49, 0.51);
        Assert.Throws<ArgumentException>(() => new BudgetSolver().Solve([groups[0] with { RoundTo = -1 }], null, null, BudgetTarget.Filters, 0.5, 1));
    }

    [Fact]
    public void MinKeepIsRespected()
    {
        var (groups, macs, pars) = Chain();
        groups[2] = groups[2] with { MinKeep = 200 };
        var plan = new BudgetSolver().Solve(groups, macs, pars, BudgetTarget.Params, 0.5, 1);
        Assert.True(plan.Keep[2] >= 200);
        Assert.InRange(plan.AchievedReduction, 0.49, 0.51);
        var floors = new BudgetSolver().Solve(groups, macs, pars, BudgetTarget.Filters, 0.95, 1);
        Assert.False(floors.Reachable);
        Assert.Equal([1, 1, 200], floors.Keep);
        Assert.Equal(floors.MaxReduction, floors.AchievedReduction, 12);
    }

    [Fact]
    public void FixedGroupsKeepTheirWidth()
    {
        var (groups, macs, pars) = Chain();
        groups[1] = groups[1] with { Fixed = true, Spectrum = null };
        var plan = new BudgetSolver().Solve(groups, macs, pars, BudgetTarget.Macs, 0.3, 1);
        Assert.Equal(128, plan.Keep[1]);
        Assert.InRange(plan.AchievedReduction, 0.29, 0.31);
        var filters = new BudgetSolver().Solve(groups, macs, pars, BudgetTarget.Filters, 0.25, 1);
        Assert.Equal(0.25, 1 - (filters.Keep[0] + filters.Keep[2]) / 320.0, 2);
    }

    [Theory]
    [InlineData(BudgetTarget.Macs, 0.5, 1)]
    [InlineData(BudgetTarget.Params, 0.4, 1)]
    [InlineData(BudgetTarget.Filters, 0.5, 1)]
    [InlineData(BudgetTarget.Macs, 0.5, 8)]
    public void UniformAllocationHitsTheBudget(BudgetTarget target, double cr, int roundTo)
    {
        var (groups, macs, pars) = Chain();
        var plan = new BudgetSolver().AllocateUniform(groups, macs, pars, target, cr, roundTo);
        output.WriteLine($"uniform {target} {cr} /{roundTo}: keep [{string.Join(", ", plan.Keep)}], f {plan.Threshold:F3}, achieved {plan.AchievedReduction:F4}");
        Assert.True(plan.Reachable);
        Assert.InRange(plan.AchievedReduction, cr - 0.01, cr + 0.01);
        if (roundTo == 1)
            for (int g = 0; g < groups.Length; g++)
                Assert.True(Math.Abs(plan.Keep[g] - plan.Threshold * groups[g].Width) <= 1, $"group {g}: {plan.Keep[g]} vs f·W");
    }

    [Fact]
    public void DepthwiseSameGroupTermIsLinear()
    {
        var dw = new CostTerm(0, 0, 9.0);
        Assert.Equal(9.0 * 32, dw.Evaluate([32]));
        Assert.Equal(9.0 * 16, dw.Evaluate([16])); // halving the channels halves a depthwise conv
        var pw = new CostTerm(1, 0, 2.0);
        Assert.Equal(2.0 * 16 * 5, pw.Evaluate([16, 5]));
        Assert.Equal(7.0, new CostTerm(-1, -1, 7.0).Evaluate([3]));
        Assert.Equal(3.0 * 4, new CostTerm(-1, 0, 3.0).Evaluate([4]));
    }

    [Fact]
    public void DeadGroupDropsToItsFloorWithoutNaN()
    {
        var (groups, macs, pars) = Chain();
        var dead = FilterSpectrum.Compute(new FilterMatrix(128, 576, new double[128 * 576]));
        groups[1] = groups[1] with { Spectrum = dead };
        var plan = new BudgetSolver().Solve(groups, macs, pars, BudgetTarget.Filters, 0.3, 1);
        Assert.Equal(1, plan.Keep[1]);
        Assert.False(double.IsNaN(plan.Threshold) || double.IsNaN(plan.AchievedReduction));
        var none = new BudgetSolver().Solve(groups, macs, pars, BudgetTarget.Filters, 0.0, 1);
        Assert.Equal([64, 128, 256], none.Keep);
    }

    [Fact]
    public void KeepAtThresholdMapsTheStructuralSpectrumOntoTheWidth()
    {
        var capped = new PlanningGroup(64, FilterSpectrum.FromSingularValues(64, 9, [9, 8, 7, 6, 5, 4, 3, 2, 1]), 1, false);
        Assert.Equal(64, BudgetSolver.KeepAtThreshold(capped, 0.05));
        Assert.Equal((int)Math.Ceiling(64 * 5 / 9.0), BudgetSolver.KeepAtThreshold(capped, 5 / 9.0));
        Assert.Equal(8, BudgetSolver.KeepAtThreshold(capped, 1.0)); // one of nine units → ⌈64/9⌉
        var full = new PlanningGroup(4, FilterSpectrum.FromSingularValues(4, 10, [4, 3, 2, 1]), 1, false);
        Assert.Equal(2, BudgetSolver.KeepAtThreshold(full, 0.6)); // uncapped: the plain rule
    }

    [Fact]
    public void BadArgumentsNameTheValue()
    {
        var (groups, macs, pars) = Chain();
        var s = new BudgetSolver();
        Assert.Contains("1.5", Assert.Throws<ArgumentException>(() => s.Solve(groups, macs, pars, BudgetTarget.Macs, 1.5, 1)).Message);
        Assert.Contains("0", Assert.Throws<ArgumentException>(() => s.Solve(groups, macs, pars, BudgetTarget.Macs, 0.5, 0)).Message);
        Assert.Contains("7", Assert.Throws<ArgumentException>(() => s.Solve(groups, [new CostTerm(7, -1, 1)], pars, BudgetTarget.Macs, 0.5, 1)).Message);
        var bad = groups.ToArray(); bad[0] = bad[0] with { MinKeep = 65 };
        Assert.Contains("65", Assert.Throws<ArgumentException>(() => s.Solve(bad, macs, pars, BudgetTarget.Macs, 0.5, 1)).Message);
        Assert.Throws<ArgumentException>(() => s.Solve(groups, [], pars, BudgetTarget.Macs, 0.5, 1));
    }
}
