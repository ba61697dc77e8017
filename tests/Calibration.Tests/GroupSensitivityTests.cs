using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Spectral;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>The allocation's end-to-end check: one group pruned alone, its readers re-fitted, the outputs compared.</summary>
public sealed class GroupSensitivityTests
{
    /// <summary>x → A (3→6) → Relu → B (6→4) → y; A's channel 5 is dead (its bias keeps it below zero); B's weight lives in a Constant node.</summary>
    private static OnnxModel Model(bool constantWeight, int batch = -1)
    {
        var b = new GraphBuilder(seed: 4);
        string x = b.Input("x", batch, 3, 8, 8);
        var bias = b.Normal(6, 0.1);
        bias[5] = -1000;
        string h = b.Relu(b.Node("Conv", [x, b.Init("wa", [6, 3, 3, 3]), b.Init("ba", [6], bias)],
            ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 })));
        string y = b.Conv(h, 6, 4, k: 1, weight: constantWeight ? b.ConstantNode("wb", [4, 6, 1, 1]) : null);
        b.Output(y, batch, 4, 8, 8);
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
    public void A_model_with_a_fixed_batch_is_measured_in_one_run_and_agrees_with_one_sample_per_run()
    {
        // The check runs one sample at a time where the model allows it; a model whose batch is fixed at the check's
        // sample count must get them all in one run, and the figure must not depend on which.
        using var data = CalibrationData.FromTensors([ModelOps.Floats("x", [12, 3, 8, 8], new GraphBuilder(seed: 8).Normal(12 * 192))]);
        var (group, readers, _) = Rank(Model(constantWeight: false), data);
        var candidates = new Dictionary<int, GroupSensitivity.Candidate> { [group.Id] = new(readers, [1, 2, 3, 4, 5]) };
        double perSample = GroupSensitivity.Measure(Model(constantWeight: false), candidates, data.Slice(0, 6))[group.Id];
        double whole = GroupSensitivity.Measure(Model(constantWeight: false, batch: 6), candidates, data.Slice(0, 6))[group.Id];
        Assert.True(perSample > 1e-3, $"live channel 0 dropped: {perSample}");
        Assert.Equal(whole, perSample, 1e-9 * whole);
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
    /// <summary>
    /// x (3×2×2) → A (3→6, channel 5 a copy of channel 4) → Relu → a Gemm reading it through GlobalAveragePool + Flatten
    /// (one feature per channel) or a Flatten of the whole 6×2×2 map (four features per channel), B stored either way round.
    /// </summary>
    private static OnnxModel GemmModel(bool pooled, bool transB)
    {
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", -1, 3, 2, 2);
        var wa = b.Normal(6 * 27, 0.3);
        Array.Copy(wa, 4 * 27, wa, 5 * 27, 27);
        var ba = b.Normal(6, 0.1);
        ba[5] = ba[4];
        string h = b.Relu(b.Node("Conv", [x, b.Init("wa", [6, 3, 3, 3], wa), b.Init("ba", [6], ba)],
            ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 })));
        string f = b.Node("Flatten", [pooled ? b.Node("GlobalAveragePool", [h]) : h], ("axis", 1L));
        int features = pooled ? 6 : 24;
        string y = b.Node("Gemm", [f, b.Init("wb", transB ? [4, features] : [features, 4]), b.Init("bb", [4], b.Normal(4, 0.1))], ("transB", transB ? 1L : 0L));
        b.Output(y, -1, 4);
        return b.Model();
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void A_group_read_by_a_Gemm_is_measured_and_its_duplicate_channel_moves_into_its_twin(bool pooled, bool transB)
    {
        var model = GemmModel(pooled, transB);
        using var data = CalibrationData.FromTensors([ModelOps.Floats("x", [16, 3, 2, 2], new GraphBuilder(seed: 9).Normal(16 * 12))]);
        var (group, readers, _) = Rank(model, data);
        Assert.Equal("Gemm", Assert.Single(readers).Item1.Layer.OpType);
        var candidates = new Dictionary<int, GroupSensitivity.Candidate>
        {
            [group.Id] = new(readers, [0, 1, 2, 3, 4]),
            [group.Id + 100] = new(readers, [1, 2, 3, 4, 5]),
        };
        var damage = GroupSensitivity.Measure(model, candidates, data.Slice(0, 8));
        // Channel 5's weights moved onto channel 4 (its copy) at the right places of B: the outputs barely change.
        Assert.True(damage[group.Id] < 1e-2 * damage[group.Id + 100], $"twin dropped: {damage[group.Id]}, channel 0 dropped: {damage[group.Id + 100]}");
        Assert.True(damage[group.Id + 100] > 1e-4, $"live channel 0 dropped: {damage[group.Id + 100]}");
    }
}
