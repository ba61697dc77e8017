using OnnxSlim.TestSupport;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>Grouped convs, C2f (chunk and split forms), SPPF and ghost modules: prunable, exact on zeroed channels, and costed.</summary>
public sealed class ArchitecturePatternTests
{
    public static TheoryData<string> Names => [.. ArchitecturePatterns.All];

    [Theory]
    [MemberData(nameof(Names))]
    public void Only_groups_reaching_graph_outputs_are_frozen(string name)
    {
        using var model = ArchitecturePatterns.Build(name).Model();
        var groups = Harness.Analyze(model);
        Assert.All(groups.FrozenGroups, g => Assert.StartsWith("reaches graph output", g.Reason));
        Assert.True(groups.Prunable.Count() >= 3, string.Join("; ", groups));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Zeroed_filters_are_removed_exactly(string name)
    {
        using var model = ArchitecturePatterns.Build(name).Model();
        var groups = Harness.Analyze(model);
        var keep = new Dictionary<int, int[]>();
        foreach (var g in groups.Prunable.Where(g => g.BlockWidth > 1))
        {
            // The same positions in every conv group, so tied groups keep equal counts.
            var removed = Enumerable.Range(0, g.Width).Where(c => c % g.BlockWidth % 3 == 1).ToArray();
            keep[g.Id] = [.. Enumerable.Range(0, g.Width).Except(removed)];
            RedundancyInjector.ZeroChannels(groups, g.Id, removed);
        }
        var before = Harness.Run(model.ToBytes());
        var result = ChannelPruner.Apply(model, groups, keep);
        Assert.Equal(keep.Sum(k => groups[k.Key].Width - k.Value.Length), result.Removed);
        Harness.AssertSameOutputs(before, Harness.Run(model.ToBytes()), 1e-5);
    }

    // The neck C2f's halves are ranges of one group (nothing joins them again): a half's share of the group's keep is approximate.
    private static readonly HashSet<string> CostIsApproximate = ["c2f_chunk", "c2f_split"];

    [Theory]
    [MemberData(nameof(Names))]
    public void Random_keep_runs_and_costs_drop_as_predicted(string name)
    {
        using var model = ArchitecturePatterns.Build(name).Model();
        var groups = Harness.Analyze(model);
        var keep = Harness.RandomKeep(groups, 0.6, new Random(3));
        var shapes = ShapeProbe.Run(model, ModelCost.RequiredValues(model.Graph), []);
        var original = ModelCost.Compute(model.Graph, shapes);
        var terms = GroupCosts.Build(groups, shapes);
        var full = groups.Select(g => g.Width).ToArray();
        var kept = groups.Select(g => keep.TryGetValue(g.Id, out var k) ? k.Length : g.Width).ToArray();
        Assert.Equal(original.Macs, GroupCosts.Evaluate(terms.Macs, full), 1e-6 * original.Macs);
        Assert.Equal(original.Params, GroupCosts.Evaluate(terms.Params, full), 1e-6 * original.Params);

        var before = Harness.Run(model.ToBytes());
        ChannelPruner.Apply(model, groups, keep);
        var after = Harness.Run(model.ToBytes());
        Assert.Equal(before.Select(o => o.Shape), after.Select(o => o.Shape));
        Assert.All(after, o => Assert.All(o.AsFloats(), v => Assert.True(float.IsFinite(v))));
        var pruned = ModelCost.Compute(model.Graph, ShapeProbe.Run(model, ModelCost.RequiredValues(model.Graph), []));
        double tolerance = CostIsApproximate.Contains(name) ? 0.05 : 1e-6;
        Assert.Equal(pruned.Macs, GroupCosts.Evaluate(terms.Macs, kept), tolerance * pruned.Macs);
        Assert.Equal(pruned.Params, GroupCosts.Evaluate(terms.Params, kept), tolerance * pruned.Params);
    }

    [Fact]
    public void Grouped_conv_keeps_equal_counts_per_conv_group_and_its_group_attribute()
    {
        using var model = ArchitecturePatterns.Build("grouped_conv").Model();
        var groups = Harness.Analyze(model);
        var grouped = model.Graph.Nodes.Single(n => n.OpType == "Conv" && n.GetInt("group", 1) == 4);
        var input = groups.Single(g => g.Sites.OfType<GroupedInputSite>().Any());
        var output = groups.Single(g => g.Producers.Contains(grouped));
        Assert.Equal((4, 4), (input.Blocks, output.Blocks));
        Assert.True(input.Prunable && output.Prunable);

        // Unequal counts per conv group are refused, naming the constraint.
        var error = Assert.Throws<ArgumentException>(() => ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [input.Id] = [0, 1, 4, 8, 12] }));
        Assert.Contains("4 conv groups", error.Message);

        var keep = new Dictionary<int, int[]> { [input.Id] = [0, 3, 5, 6, 8, 9, 14, 15], [output.Id] = [1, 5, 9, 13] };
        var before = Harness.Run(model.ToBytes());
        ChannelPruner.Apply(model, groups, keep);
        Assert.Equal([4L, 2, 3, 3], model.Graph.ResolveWeight(grouped.Inputs[1])!.Tensor.Dims);
        Assert.Equal(4, grouped.GetInt("group", 1));
        Assert.Equal(before.Select(o => o.Shape), Harness.Run(model.ToBytes()).Select(o => o.Shape));
    }

    [Fact]
    public void First_channels_of_a_grouped_conv_group_come_equally_from_every_conv_group()
    {
        using var model = ArchitecturePatterns.Build("grouped_conv").Model();
        var groups = Harness.Analyze(model);
        var input = groups.Single(g => g.Sites.OfType<GroupedInputSite>().Any());
        var first = input.FirstChannels(8);
        Assert.Equal([0, 1, 4, 5, 8, 9, 12, 13], first);
        Assert.True(input.KeepsEqualBlocks(first));
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [input.Id] = first });
        Assert.Throws<ArgumentException>(() => input.FirstChannels(6));
    }

    [Fact]
    public void Grouped_conv_filters_of_different_conv_groups_are_orthogonal_in_the_spectral_matrix()
    {
        using var model = ArchitecturePatterns.Build("grouped_conv").Model();
        var groups = Harness.Analyze(model);
        var grouped = model.Graph.Nodes.Single(n => n.OpType == "Conv" && n.GetInt("group", 1) == 4);
        var output = groups.Single(g => g.Producers.Contains(grouped));
        var matrix = GroupMatrices.Build(model.Graph, output);
        Assert.Equal(16 * 9, matrix.Cols); // each conv group's 4 inputs × 3×3 taps, side by side: C_in·k²
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++)
            {
                if (output.BlockOf(i) == output.BlockOf(j)) continue;
                double dot = 0;
                for (int c = 0; c < matrix.Cols; c++) dot += matrix.Row(i)[c] * matrix.Row(j)[c];
                Assert.Equal(0, dot);
            }
    }

    [Fact]
    public void Chunk_split_points_become_constants_of_the_kept_counts()
    {
        using var model = ArchitecturePatterns.Build("c2f_chunk").Model();
        var groups = Harness.Analyze(model);
        // Halves keeping different counts: ceil(K/2) recomputed from the pruned width would cut in the wrong place.
        var cv1 = model.Graph.Nodes.Where(n => n.OpType == "Conv").ElementAt(1);
        var halves = groups.Where(g => g.Producers.Contains(cv1)).ToList();
        Assert.Equal(2, halves.Count);
        var keep = new Dictionary<int, int[]> { [halves[0].Id] = [0, 1, 2], [halves[1].Id] = [0, 2, 3, 5, 6, 7] };
        var before = Harness.Run(model.ToBytes());
        ChannelPruner.Apply(model, groups, keep);
        Assert.Equal(before.Select(o => o.Shape), Harness.Run(model.ToBytes()).Select(o => o.Shape));
        var slices = model.Graph.Nodes.Where(n => n.OpType == "Slice").Take(2).ToList();
        Assert.Equal([0L], model.Graph.Constant(slices[0].Inputs[1])!.ToInt64s());
        Assert.Equal([3L], model.Graph.Constant(slices[0].Inputs[2])!.ToInt64s());
        Assert.Equal([3L], model.Graph.Constant(slices[1].Inputs[1])!.ToInt64s());
        Assert.Equal([9L], model.Graph.Constant(slices[1].Inputs[2])!.ToInt64s());
        // The backbone block's shape computation is gone; the neck's (one group, equal halves not required) is rewritten too.
        Assert.DoesNotContain(model.Graph.Nodes, n => n.OpType is "Shape" or "Gather" or "Div");
    }

    [Fact]
    public void Split_sizes_shared_by_two_blocks_are_copied_before_they_change()
    {
        using var model = ArchitecturePatterns.Build("c2f_split").Model();
        var groups = Harness.Analyze(model);
        var keep = Harness.RandomKeep(groups, 0.5, new Random(8));
        var before = Harness.Run(model.ToBytes());
        ChannelPruner.Apply(model, groups, keep);
        Assert.Equal(before.Select(o => o.Shape), Harness.Run(model.ToBytes()).Select(o => o.Shape));
        var splits = model.Graph.Nodes.Where(n => n.OpType == "Split").ToList();
        Assert.NotEqual(splits[0].Inputs[1], splits[1].Inputs[1]);
        foreach (var split in splits)
        {
            long[] sizes = model.Graph.Constant(split.Inputs[1])!.ToInt64s();
            var layout = groups.LayoutOf(split.Inputs[0])!;
            Assert.Equal(ChannelPruner.KeptIn(layout, 0, layout.Channels, g => keep.TryGetValue(g, out var k) ? k : [.. Enumerable.Range(0, groups[g].Width)]), sizes.Sum());
        }
    }
}
