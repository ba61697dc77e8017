using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Spectral;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>The allocation's end-to-end check: one group pruned alone, its readers re-fitted, the outputs compared.</summary>
public sealed class GroupSensitivityTests
{
    /// <summary>x → A (3→6) → Relu → B (6→4) → y; A's channel 5 is dead (its bias keeps it below zero); B's weight lives in a Constant node.</summary>
    private static OnnxModel Model(bool constantWeight)
    {
        var b = new GraphBuilder(seed: 4);
        string x = b.Input("x", -1, 3, 8, 8);
        var bias = b.Normal(6, 0.1);
        bias[5] = -1000;
        string h = b.Relu(b.Node("Conv", [x, b.Init("wa", [6, 3, 3, 3]), b.Init("ba", [6], bias)],
            ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 })));
        string y = b.Conv(h, 6, 4, k: 1, weight: constantWeight ? b.ConstantNode("wb", [4, 6, 1, 1]) : null);
        b.Output(y, -1, 4, 8, 8);
        return b.Model();
    }

    private static (ChannelGroup Group, IReadOnlyList<(GroupReaders.Reader, ConsumerStatistics)> Readers, ChannelElimination Ranking) Rank(OnnxModel model, CalibrationData data)
    {
        var groups = Harness.Analyze(model);
        var group = Assert.Single(groups.Prunable);
        var readers = new Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>>();
        var ranking = CalibratedRanking.Measure(model, groups, [group], data, seed: 0, readers: readers);
        return (group, readers[group.Id], ranking[group.Id]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Dropping_a_dead_channel_costs_nothing_and_a_live_one_costs_the_outputs(bool constantWeight)
    {
        var model = Model(constantWeight);
        using var data = CalibrationData.FromTensors([ModelOps.Floats("x", [12, 3, 8, 8], new GraphBuilder(seed: 8).Normal(12 * 192))]);
        var (group, readers, ranking) = Rank(model, data);
        var candidates = new Dictionary<int, GroupSensitivity.Candidate>
        {
            [group.Id] = new(readers, [0, 1, 2, 3, 4]),
            [group.Id + 100] = new(readers, [1, 2, 3, 4, 5]),
        };
        var damage = GroupSensitivity.Measure(model, candidates, data.Slice(0, 6));
        Assert.True(damage[group.Id] < 1e-9, $"dead channel dropped: {damage[group.Id]}");
        Assert.True(damage[group.Id + 100] > 1e-3, $"live channel 0 dropped: {damage[group.Id + 100]}");
        // The ranking drops the dead channel first, so its curve and the measured damage agree at 5 kept.
        Assert.Equal(5, ranking.RemovalOrder[0]);
    }

    [Fact]
    public void A_reader_the_check_cannot_re_weigh_leaves_its_group_unmeasured()
    {
        // B reads A's channels through a Cast of its weight: the runner cannot feed a replacement.
        var b = new GraphBuilder(seed: 4);
        string x = b.Input("x", -1, 3, 8, 8);
        string h = b.Relu(b.Conv(x, 3, 6));
        string w = b.Node("Cast", [b.Init("wb", [4, 6, 1, 1])], ("to", (long)DataType.Float));
        string y = b.Conv(h, 6, 4, k: 1, weight: w);
        b.Output(y, -1, 4, 8, 8);
        var model = b.Model();
        using var data = CalibrationData.FromTensors([ModelOps.Floats("x", [8, 3, 8, 8], new GraphBuilder(seed: 8).Normal(8 * 192))]);
        var (group, readers, _) = Rank(model, data);
        var damage = GroupSensitivity.Measure(model, new Dictionary<int, GroupSensitivity.Candidate> { [group.Id] = new(readers, [0, 1, 2]) }, data.Slice(0, 4));
        Assert.Empty(damage);
    }
}
