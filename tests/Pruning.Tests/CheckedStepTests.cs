using System.Text.RegularExpressions;
using OnnxSlim.Calibration;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;
using OnnxSlim.TestSupport;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.Pruning.Tests;

/// <summary>How the calibrated allocation's steps meet its end-to-end check: the step of narrow groups on large maps, and the check's boost moved to a group's next step.</summary>
public sealed class CheckedStepTests
{
    [Fact]
    public void Narrow_groups_on_large_maps_step_by_4_only_under_a_calibrated_MACs_budget()
    {
        var calibrated = new PruneOptions { Criterion = SelectionCriterion.Refit };
        Assert.Equal(PruneOptions.CheckedHighResolutionRoundTo, calibrated.RoundFor(24, 160 * 160));
        Assert.Equal(PruneOptions.HighResolutionRoundTo, (calibrated with { Target = BudgetTarget.Params }).RoundFor(24, 160 * 160));
        Assert.Equal(PruneOptions.HighResolutionRoundTo, new PruneOptions().RoundFor(24, 160 * 160));
        Assert.Equal(1, calibrated.RoundFor(24, 28 * 28));
        Assert.Equal(PruneOptions.AutoRoundTo, calibrated.RoundFor(96, 160 * 160));
        Assert.Equal(16, (calibrated with { RoundTo = 16 }).RoundFor(24, 160 * 160));
    }

    [Fact]
    public void The_checks_boost_of_a_stepped_group_moves_to_its_next_step()
    {
        var calib = NpyFile.Read(Fixtures.CalibX);
        var calibration = CalibrationData.FromTensors([new NamedTensor("input", TensorElementType.Float, calib.Shape, calib.Floats!)]);
        var analysis = ModelAnalysis.Run(OnnxModel.Load(Fixtures.FusedResnet), []);
        var log = new List<string>();
        var options = new PruneOptions { Ratio = 0.5, Criterion = SelectionCriterion.Refit, Calibration = calibration, Log = log.Add };
        Planner.Plan(analysis, options, calibration);
        // The ResNet's 64-wide groups step by 8: a boosted one measured at 56 is weighed more where the allocation decides 64.
        var moved = log.Select(l => Regex.Match(l, @"group (\d+) weighed ×([\d.]+) \(×([\d.]+) at its next step\), keeps (\d+) → (\d+) of (\d+)"))
            .Where(m => m.Success).ToList();
        Assert.NotEmpty(moved);
        foreach (var m in moved)
        {
            Assert.True(double.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) > double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), m.Value);
            Assert.Equal(64, int.Parse(m.Groups[6].Value));
        }
    }
}
