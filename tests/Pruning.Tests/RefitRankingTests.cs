using OnnxSlim.Calibration;
using OnnxSlim.TestSupport;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
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
}
