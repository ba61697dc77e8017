using OnnxSlim.TestSupport;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>The three end-to-end checks on every pattern graph: zeroed filters, merged multiples, random 70%.</summary>
public sealed class PatternTests
{
    public static TheoryData<string> Names => [.. Patterns.All];

    // Channels zeroed at the producers stay zero only where f(0) = 0 along the way; here a scalar
    // offset (+0.05, not per channel) makes them non-zero, so only merging can remove them exactly.
    private static readonly HashSet<string> ZeroDoesNotStayZero = ["hardswish_decomposed"];

    [Theory]
    [MemberData(nameof(Names))]
    public void Zeroed_filters_are_removed_exactly(string name)
    {
        if (ZeroDoesNotStayZero.Contains(name)) return;
        using var model = Patterns.Build(name).Model();
        var groups = Harness.Analyze(model);
        Assert.NotEmpty(groups.Prunable);
        var keep = new Dictionary<int, int[]>();
        foreach (var g in groups.Prunable.Where(g => g.Width > 1))
        {
            var removed = Enumerable.Range(0, g.Width).Where(c => c % 3 == 1).ToArray();
            keep[g.Id] = [.. Enumerable.Range(0, g.Width).Except(removed)];
            RedundancyInjector.ZeroChannels(groups, g.Id, removed);
        }
        var before = Harness.Run(model.ToBytes());
        var result = ChannelPruner.Apply(model, groups, keep);
        Assert.Equal(keep.Sum(k => groups[k.Key].Width - k.Value.Length), result.Removed);
        Assert.True(result.TensorsSliced > 0);
        Harness.AssertSameOutputs(before, Harness.Run(model.ToBytes()), 1e-5);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Removed_multiples_of_kept_filters_merge_exactly(string name)
    {
        using var model = Patterns.Build(name).Model();
        var groups = Harness.Analyze(model);
        var keep = Harness.RandomKeep(groups, 0.6, new Random(name.Length));
        Assert.NotEmpty(keep);
        Assert.Equal(0, RedundancyInjector.MakeMultiples(groups, keep, new Random(5)));
        var before = Harness.Run(model.ToBytes());
        var result = ChannelPruner.Apply(model, groups, keep, new RewriteOptions { Merge = true });
        Assert.True(result.Removed > 0);
        Assert.Equal(result.Removed, result.Merged);
        // Merged sums stored back in fp16 are rounded to fp16 (relative step 2^-11).
        Harness.AssertSameOutputs(before, Harness.Run(model.ToBytes()), name == "fp16_cast" ? 1e-3 : 1e-4);
    }

    // A Split part's share of a group is approximated as proportional to the group's keep count.
    private static readonly HashSet<string> CostIsApproximate = ["split_slice"];

    [Theory]
    [MemberData(nameof(Names))]
    public void Random_keep_of_70_percent_runs_and_costs_drop_as_predicted(string name)
    {
        using var model = Patterns.Build(name).Model();
        var groups = Harness.Analyze(model);
        var keep = Harness.RandomKeep(groups, 0.7, new Random(11));
        var shapes = ShapeProbe.Run(model, ModelCost.RequiredValues(model.Graph), []);
        var original = ModelCost.Compute(model.Graph, shapes);
        var terms = GroupCosts.Build(groups, shapes);
        var full = groups.Select(g => g.Width).ToArray();
        var kept = groups.Select(g => keep.TryGetValue(g.Id, out var k) ? k.Length : g.Width).ToArray();
        Assert.Empty(original.MissingShapes);
        Assert.Equal(original.Macs, GroupCosts.Evaluate(terms.Macs, full), 1e-6 * original.Macs);
        Assert.Equal(original.Params, GroupCosts.Evaluate(terms.Params, full), 1e-6 * original.Params);

        var before = Harness.Run(model.ToBytes());
        var result = ChannelPruner.Apply(model, groups, keep);
        Assert.True(result.Removed > 0);
        var after = Harness.Run(model.ToBytes());
        Assert.Equal(before.Select(o => o.Shape), after.Select(o => o.Shape));
        Assert.All(after, o => Assert.All(o.AsFloats(), v => Assert.True(float.IsFinite(v))));
        // Nothing reads a removed initializer, and every remaining one is read.
        var read = model.Graph.Nodes.SelectMany(n => n.Inputs).ToHashSet();
        Assert.All(model.Graph.InitializerNames, t => Assert.Contains(t, read));

        var pruned = ModelCost.Compute(model.Graph, ShapeProbe.Run(model, ModelCost.RequiredValues(model.Graph), []));
        Assert.True(pruned.Macs < original.Macs);
        double tolerance = CostIsApproximate.Contains(name) ? 0.05 : 1e-6;
        Assert.Equal(pruned.Macs, GroupCosts.Evaluate(terms.Macs, kept), tolerance * pruned.Macs);
        Assert.Equal(pruned.Params, GroupCosts.Evaluate(terms.Params, kept), tolerance * pruned.Params);
    }
}
