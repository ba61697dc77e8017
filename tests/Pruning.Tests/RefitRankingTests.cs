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
        var options = new PruneOptions { Ratio = 0.5, Criterion = SelectionCriterion.Refit, Calibration = [calibration] };
        return Planner.Plan(analysis, options, [calibration]);
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
}
