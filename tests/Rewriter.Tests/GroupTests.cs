using OnnxSlim.TestSupport;
using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>What the analysis finds on each pattern: which nodes share a group, where the slices go.</summary>
public sealed class GroupTests
{
    private static (OnnxModel Model, ChannelGroupSet Groups) Analyze(string pattern)
    {
        var model = Patterns.Build(pattern).Model();
        return (model, Harness.Analyze(model));
    }

    private static ChannelGroup GroupOf(ChannelGroupSet groups, Node producer) => groups.Single(g => g.Producers.Contains(producer));

    private static Node NthOf(OnnxModel model, string op, int n) => model.Graph.Nodes.Where(x => x.OpType == op).ElementAt(n);

    [Fact]
    public void Chain_has_one_group_per_conv_in_graph_order_and_the_output_conv_is_frozen()
    {
        var (model, groups) = Analyze("chain");
        using var _ = model;
        Assert.Equal([8, 16, 4], groups.Select(g => g.Width));
        Assert.Equal([0, 1, 2], groups.Select(g => g.Id));
        Assert.True(groups[0].Prunable && groups[1].Prunable);
        Assert.StartsWith("reaches graph output", groups[2].Reason);
        // Group 1: its conv's filters and bias, and the next conv's input axis.
        Assert.Equal([SiteRole.ProducerWeight, SiteRole.ProducerBias, SiteRole.ConsumerWeight],
            groups[1].Sites.OfType<TensorSite>().Select(s => s.Role));
    }

    [Fact]
    public void Residual_adds_put_every_conv3_and_the_downsample_in_the_stream_group()
    {
        var (model, groups) = Analyze("residual");
        using var _ = model;
        var stream = GroupOf(groups, NthOf(model, "Conv", 2));
        Assert.Equal(16, stream.Width);
        Assert.Equal([NthOf(model, "Conv", 2), NthOf(model, "Conv", 3), NthOf(model, "Conv", 5)], stream.Producers);
        Assert.True(stream.Prunable);
        // Two BatchNorms (after conv3 and the downsample) read the stream's channels: 4 parameters each.
        Assert.Equal(8, stream.Sites.OfType<TensorSite>().Count(s => s.Role is SiteRole.ChannelGain or SiteRole.ChannelOffset));
    }

    [Fact]
    public void Concat_puts_each_branch_at_its_offset_in_the_reading_conv()
    {
        var (model, groups) = Analyze("concat");
        using var _ = model;
        var last = model.Graph.Nodes.Last(n => n.OpType == "Conv");
        var site = groups.Sites.OfType<TensorSite>().Single(s => s.Node == last && s.Role == SiteRole.ConsumerWeight);
        Assert.Equal([6, 10, 5], site.Layout.Segments.Select(s => s.Length));
        Assert.Equal(3, site.Layout.Groups.Count());
        var keep = site.Layout.Groups.ToDictionary(g => g, g => new[] { 0, groups[g].Width - 1 });
        ChannelPruner.Apply(model, groups, keep);
        Assert.Equal([4L, 6, 1, 1], model.Graph.ResolveWeight(last.Inputs[1])!.Tensor.Dims);
    }

    [Fact]
    public void Depthwise_conv_joins_the_expansion_group_and_its_group_attribute_follows()
    {
        var (model, groups) = Analyze("depthwise");
        using var _ = model;
        var depthwise = model.Graph.Nodes.First(n => n.OpType == "Conv" && n.GetInt("group", 1) == 24);
        var expand = GroupOf(groups, NthOf(model, "Conv", 1));
        Assert.Equal([depthwise], expand.DepthwiseProducers);
        Assert.Contains(depthwise, expand.Producers);
        Assert.Contains(expand.Sites, s => s is CountSite { Attribute: "group" });
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [expand.Id] = [1, 2, 3, 5, 8, 13, 21] });
        Assert.Equal(7, depthwise.GetInt("group", 0));
        Assert.Equal([7L, 1, 3, 3], model.Graph.ResolveWeight(depthwise.Inputs[1])!.Tensor.Dims);
    }

    [Fact]
    public void Squeeze_excitation_gate_conv_is_a_producer_of_the_gated_group()
    {
        var (model, groups) = Analyze("squeeze_excitation");
        using var _ = model;
        var main = GroupOf(groups, NthOf(model, "Conv", 0));
        Assert.Equal([NthOf(model, "Conv", 0), NthOf(model, "Conv", 2)], main.Producers);
        Assert.True(main.Prunable);
        Assert.True(GroupOf(groups, NthOf(model, "Conv", 1)).Prunable); // the squeeze width
    }

    [Fact]
    public void Flatten_of_unknown_spatial_size_takes_it_from_the_gemm_weight()
    {
        using var model = Patterns.Build("flatten_chw").Model();
        var groups = Harness.Analyze(model, probeShapes: false);
        var conv = groups[0];
        Assert.True(conv.Prunable);
        var site = conv.Sites.OfType<TensorSite>().Single(s => s.Role == SiteRole.ConsumerWeight);
        Assert.Equal(16, site.Layout.Segments[0].Inner);
        RedundancyInjector.ZeroChannels(groups, conv.Id, [1, 4]);
        var before = Harness.Run(model.ToBytes());
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [conv.Id] = [0, 2, 3, 5] });
        Assert.Equal([64L, 7], model.Graph.Initializer(site.Weight.Tensor.Name)!.Dims);
        Harness.AssertSameOutputs(before, Harness.Run(model.ToBytes()), 1e-5);
    }

    [Fact]
    public void Reshape_constants_that_state_the_channel_count_are_rewritten()
    {
        var (model, groups) = Analyze("reshape");
        using var _ = model;
        var keep = Harness.RandomKeep(groups, 0.5, new Random(3));
        Assert.Equal(2, keep.Count);
        ChannelPruner.Apply(model, groups, keep);
        var shapes = model.Graph.Nodes.Where(n => n.OpType == "Reshape").Select(n => model.Graph.Constant(n.Inputs[1])!.ToInt64s()).ToList();
        Assert.Equal([1L, 3 * 16], shapes[0]);
        Assert.Equal([0L, 2, -1], shapes[1]);
        Assert.Equal([-1L, 2], shapes[2]);
        Assert.Single(Harness.Run(model.ToBytes()).Take(1));
    }

    [Fact]
    public void A_weight_shared_by_several_convs_couples_them_and_is_sliced_once()
    {
        var (model, groups) = Analyze("shared_weight");
        using var _ = model;
        var sharedConvs = model.Graph.Nodes.Where(n => n.OpType == "Conv" && n.Inputs[1].StartsWith("shared_w")).ToList();
        var shared = GroupOf(groups, sharedConvs[0]);
        Assert.Equal(sharedConvs, shared.Producers);
        Assert.True(shared.Prunable);
        // Both pyramid levels that feed the shared conv became one group too.
        var levels = groups.Where(g => g.Producers.Count == 2 && g != shared && g.Prunable).ToList();
        Assert.Single(levels);
        int initializers = model.Graph.Proto.Initializer.Count;
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [shared.Id] = [0, 2, 5], [levels[0].Id] = [1, 2, 3, 4, 6] });
        Assert.Equal(initializers, model.Graph.Proto.Initializer.Count);
        Assert.Equal([3L, 5, 3, 3], model.Graph.Initializer(sharedConvs[0].Inputs[1])!.Dims);
        Assert.All(sharedConvs, c => Assert.Equal(sharedConvs[0].Inputs[1], c.Inputs[1]));
    }

    [Fact]
    public void A_bias_two_layers_share_only_by_value_is_not_a_coupling_and_is_copied()
    {
        // Exporters store equal constants once: here two unrelated convs read one zero bias.
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 3, 8, 8);
        var bias = b.Init("zero_bias", [6], new float[6]);
        string Conv(string input, int cin) => b.Node("Conv", [input, b.Init("w", [6, cin, 3, 3]), bias], ("pads", new long[] { 1, 1, 1, 1 }));
        var h = b.Relu(Conv(x, 3));
        h = b.Relu(Conv(h, 6));
        b.Output(b.Conv(h, 6, 2, k: 1), 1, 2, 8, 8);
        using var model = b.Model();
        var groups = Harness.Analyze(model);
        Assert.Equal(3, groups.Count);
        Assert.True(groups[0].Prunable && groups[1].Prunable);
        RedundancyInjector.ZeroChannels(groups, 0, [1, 3]);
        RedundancyInjector.ZeroChannels(groups, 1, [0, 5]);
        var before = Harness.Run(model.ToBytes());
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [0] = [0, 2, 4, 5], [1] = [1, 2, 3, 4] });
        Harness.AssertSameOutputs(before, Harness.Run(model.ToBytes()), 1e-5);
        var convs = model.Graph.Nodes.Where(n => n.OpType == "Conv").Take(2).ToList();
        Assert.NotEqual(convs[0].Inputs[2], convs[1].Inputs[2]);
        Assert.Null(model.Graph.Initializer(bias));
    }

    [Fact]
    public void Classifier_biases_shared_through_identity_stay_separate_groups()
    {
        // torchvision's VGG export: fc2 reads fc1's (equal) bias through an Identity node.
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 3, 8, 8);
        var h = b.Node("Flatten", [b.Node("GlobalAveragePool", [b.Relu(b.Conv(x, 3, 6))])], ("axis", 1L));
        var bias = b.Init("fc_bias", [10], b.Normal(10, 0.1));
        var alias = b.Node("Identity", [bias]);
        h = b.Relu(b.Node("Gemm", [h, b.Init("fc1", [10, 6]), bias], ("transB", 1L)));
        h = b.Relu(b.Node("Gemm", [h, b.Init("fc2", [10, 10]), alias], ("transB", 1L)));
        b.Output(b.Node("Gemm", [h, b.Init("fc3", [4, 10])], ("transB", 1L)), 1, 4);
        using var model = b.Model();
        var groups = Harness.Analyze(model);
        Assert.Equal([true, true, true, false], groups.Select(g => g.Prunable));
        var keep = new Dictionary<int, int[]> { [1] = [0, 1, 2, 5, 9], [2] = [3, 4, 6, 7] };
        RedundancyInjector.ZeroChannels(groups, 1, [3, 4, 6, 7, 8]);
        RedundancyInjector.ZeroChannels(groups, 2, [0, 1, 2, 5, 8, 9]);
        var before = Harness.Run(model.ToBytes());
        ChannelPruner.Apply(model, groups, keep);
        Harness.AssertSameOutputs(before, Harness.Run(model.ToBytes()), 1e-5);
        Assert.DoesNotContain(model.Graph.Nodes, n => n.OpType == "Identity");
        Assert.Null(model.Graph.Initializer(bias));
    }

    [Fact]
    public void ConvTranspose_filters_are_on_weight_axis_1()
    {
        var (model, groups) = Analyze("conv_transpose");
        using var _ = model;
        var convT = model.Graph.Nodes.First(n => n.OpType == "ConvTranspose");
        var group = GroupOf(groups, convT);
        var site = group.Sites.OfType<TensorSite>().Single(s => s.Role == SiteRole.ProducerWeight);
        Assert.Equal(1, site.Axis);
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [group.Id] = [0, 3, 4] });
        Assert.Equal([8L, 3, 2, 2], model.Graph.ResolveWeight(convT.Inputs[1])!.Tensor.Dims);
    }

    [Fact]
    public void Fp16_weights_behind_cast_stay_fp16_and_value_info_follows()
    {
        var (model, groups) = Analyze("fp16_cast");
        using var _ = model;
        var conv = NthOf(model, "Conv", 0);
        var cast = model.Graph.Producer(conv.Inputs[1])!;
        model.Graph.Proto.ValueInfo.Add(new ValueInfoProto
        {
            Name = cast.Outputs[0],
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = new TensorShapeProto { Dim = { new[] { 8L, 3, 3, 3 }.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }) } } } },
        });
        model.Graph.Reindex();
        conv = NthOf(model, "Conv", 0);
        groups = Harness.Analyze(model);
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [GroupOf(groups, conv).Id] = [0, 1, 2, 7] });
        var stored = model.Graph.Initializer(cast.Inputs[0])!;
        Assert.Equal(DataType.Float16, stored.DataType);
        Assert.Equal([4L, 3, 3, 3], stored.Dims);
        Assert.Equal([4L, 3, 3, 3], model.Graph.DeclaredShape(cast.Outputs[0])!);
    }

    [Fact]
    public void Constant_node_weights_are_sliced_in_place()
    {
        var (model, groups) = Analyze("constant_nodes");
        using var _ = model;
        var conv = NthOf(model, "Conv", 0);
        Assert.Empty(model.Graph.Proto.Initializer);
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [GroupOf(groups, conv).Id] = [2, 3, 6] });
        Assert.Empty(model.Graph.Proto.Initializer);
        Assert.Equal([3L, 3, 3, 3], model.Graph.Constant(conv.Inputs[1])!.Dims);
        var mul = model.Graph.Nodes.First(n => n.OpType == "Mul");
        Assert.Equal([3L, 1, 1], model.Graph.Constant(mul.Inputs[0])!.Dims);
    }

    [Fact]
    public void Split_sizes_and_slice_bounds_become_kept_counts()
    {
        var (model, groups) = Analyze("split_slice");
        using var _ = model;
        var first = groups[0];
        Assert.True(first.Prunable);
        // Keep 0,1 of the first part [0,5) and 5,7,9,10 of the second part [5,12).
        ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [first.Id] = [0, 1, 5, 7, 9, 10] });
        var split = model.Graph.Nodes.Single(n => n.OpType == "Split");
        Assert.Equal([2L, 4], model.Graph.Constant(split.Inputs[1])!.ToInt64s());
        var slice = model.Graph.Nodes.Single(n => n.OpType == "Slice");
        // The slice took part-2 positions [1, 6) = channels 6..10; of the kept 5, 7, 9, 10 it now takes [1, 4).
        Assert.Equal([1L], model.Graph.Constant(slice.Inputs[1])!.ToInt64s());
        Assert.Equal([4L], model.Graph.Constant(slice.Inputs[2])!.ToInt64s());
        Harness.Run(model.ToBytes());
    }
}
