using OnnxSlim.Calibration;
using OnnxSlim.TestSupport;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Rewriter;
using OnnxSlim.Spectral;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.Pruning.Tests;

/// <summary>The refit ranking on the trained Fashion-MNIST ResNet, in-process (what the CLI's plan stage runs with --calib).</summary>
public sealed class RefitRankingTests
{
    private static KeepPlan Plan(string path, NamedTensor calibration)
    {
        var model = OnnxModel.Load(path);
        var analysis = ModelAnalysis.Run(model, []);
        var options = new PruneOptions { Ratio = 0.5, Criterion = SelectionCriterion.Refit, Calibration = CalibrationData.FromTensors([calibration]) };
        return Planner.Plan(analysis, options, CalibrationData.FromTensors([calibration]));
    }

    [Fact]
    public void BatchNorm_and_folded_variants_get_the_same_plan_and_every_group_is_ranked()
    {
        var calib = NpyFile.Read(Fixtures.CalibX);
        var calibration = new NamedTensor("input", TensorElementType.Float, calib.Shape, calib.Floats!);
        var bn = Plan(Fixtures.BnResnet, calibration);
        var fused = Plan(Fixtures.FusedResnet, calibration);
        Assert.Equal("refit ranking: 12 of 12 groups ranked on calibration data", Assert.Single(bn.Notes));
        // Reader weights are effective ones (BatchNorm scale applied), so folding BatchNorm changes nothing.
        Assert.Equal(bn.KeepByGroup.Keys.Order(), fused.KeepByGroup.Keys.Order());
        foreach (var (group, keep) in bn.KeepByGroup) Assert.Equal(keep, fused.KeepByGroup[group]);
        Assert.InRange(bn.Allocation!.AchievedReduction, 0.49, 0.51);
    }

    [Fact]
    public void Refit_plans_keep_a_quarter_of_every_group_unless_the_floor_is_given()
    {
        var calib = NpyFile.Read(Fixtures.CalibX);
        var calibration = new NamedTensor("input", TensorElementType.Float, calib.Shape, calib.Floats!);
        Assert.Equal(PruneOptions.DefaultMinKeepFraction, new PruneOptions().MinKeepFraction);
        var refit = new PruneOptions { Ratio = 0.9, Criterion = SelectionCriterion.Refit, Calibration = CalibrationData.FromTensors([calibration]) };
        Assert.Equal(PruneOptions.RefitMinKeepFraction, refit.MinKeepFraction);
        var explicitFloor = refit with { MinKeepFraction = 0.05 };
        Assert.Equal(0.05, explicitFloor.MinKeepFraction);

        var analysis = ModelAnalysis.Run(OnnxModel.Load(Fixtures.FusedResnet), []);
        int Narrowest(KeepPlan plan, out double share)
        {
            var worst = analysis.Groups.Where(g => plan.KeepByGroup.ContainsKey(g.Id)).MinBy(g => (double)plan.KeepByGroup[g.Id].Length / g.Width)!;
            share = (double)plan.KeepByGroup[worst.Id].Length / worst.Width;
            return worst.Id;
        }
        var floored = Planner.Plan(analysis, refit, CalibrationData.FromTensors([calibration]));
        Narrowest(floored, out double flooredShare);
        Assert.True(flooredShare >= PruneOptions.RefitMinKeepFraction, $"a group keeps {flooredShare:P0}");
        // The floor binds here: with the old one some group goes below a quarter.
        var loose = Planner.Plan(analysis, explicitFloor, CalibrationData.FromTensors([calibration]));
        Narrowest(loose, out double looseShare);
        Assert.True(looseShare < PruneOptions.RefitMinKeepFraction, $"the narrowest group keeps {looseShare:P0}");
    }

    /// <summary>
    /// The allocation curves the report draws are what the threshold cut: with a step of one channel and a floor of one,
    /// every group keeps exactly the units of its curve at or above the threshold. Its weight spectrum does not say that
    /// for the ranked groups (their re-fit error curves, weighed by cost and the check, were cut).
    /// </summary>
    [Fact]
    public void Every_group_keeps_the_units_of_its_allocation_curve_at_or_above_the_threshold()
    {
        var calib = NpyFile.Read(Fixtures.CalibX);
        var calibration = CalibrationData.FromTensors([new NamedTensor("input", TensorElementType.Float, calib.Shape, calib.Floats!)]);
        var analysis = ModelAnalysis.Run(OnnxModel.Load(Fixtures.FusedResnet), []);
        var options = new PruneOptions { Ratio = 0.5, Criterion = SelectionCriterion.Refit, Calibration = calibration, RoundTo = 1, MinKeepFraction = 0 };
        var plan = Planner.Plan(analysis, options, calibration);
        double tau = plan.Allocation!.Threshold;
        int explainedBySpectrum = 0;
        foreach (var group in analysis.Groups.Where(g => g.Prunable))
        {
            var curve = plan.AllocationCurves[group.Id];
            Assert.Equal(group.Width, curve.Length);
            // The solver compares σ·w with τ as σ with τ/w: a unit at τ itself may round either way.
            int above = curve.Count(v => v >= tau * (1 + 1e-12)), atOrAbove = curve.Count(v => v >= tau * (1 - 1e-12));
            Assert.InRange(plan.KeptOf(group.Id, group.Width), Math.Max(1, above), Math.Max(1, atOrAbove));
            var spectrum = FilterSpectrum.Compute(GroupMatrices.Build(analysis.Groups.Graph, group));
            if (Enumerable.Range(0, spectrum.StructuralRank).Count(i => spectrum.Normalized(i) >= tau) == plan.KeptOf(group.Id, group.Width)) explainedBySpectrum++;
        }
        Assert.True(explainedBySpectrum < analysis.Groups.Count(g => g.Prunable), "every group's weight spectrum gives its keep count too");
    }

    /// <summary>
    /// A calibrated plan computes no weight spectrum for a group its ranking orders (the allocation reads the group's error
    /// curve), yet says which groups are rank-capped as a data-free plan, which has every spectrum, does: here the 16
    /// channels a 1×1 conv expands 4 inputs to (filters of 4 values), and not the 8 a 3×3 conv makes of them.
    /// </summary>
    [Fact]
    public void A_calibrated_plan_skips_the_spectra_of_ranked_groups_and_still_knows_the_rank_capped_ones()
    {
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", -1, 4, 8, 8);
        string y = b.Conv(b.Relu(b.Conv(b.Relu(b.Conv(x, 4, 16, k: 1)), 16, 8)), 8, 4, k: 1);
        b.Output(y, -1, 4, 8, 8);
        var model = b.Model();
        var calibration = CalibrationData.FromTensors([ModelOps.Floats("x", [48, 4, 8, 8], new GraphBuilder(seed: 6).Normal(48 * 256))]);
        var analysis = ModelAnalysis.Run(model, []);
        var calibrated = Planner.Plan(analysis, new PruneOptions { Ratio = 0.3, Criterion = SelectionCriterion.Refit, Calibration = calibration }, calibration);
        var dataFree = Planner.Plan(analysis, new PruneOptions { Ratio = 0.3 });
        var prunable = analysis.Groups.Where(g => g.Prunable).ToList();
        Assert.Equal(2, prunable.Count);
        Assert.Empty(calibrated.Spectra); // both ranked
        Assert.Equal(2, dataFree.Spectra.Count);
        var capped = Assert.Single(prunable, g => dataFree.Spectra[g.Id].IsRankCapped);
        Assert.Equal(16, capped.Width);
        Assert.Equal([capped.Id], calibrated.RankCapped);
        Assert.Equal([capped.Id], dataFree.RankCapped);
    }
}
