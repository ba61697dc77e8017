using OnnxSlim.TestSupport;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>Each reason to freeze, on a graph where other groups stay prunable: frozen is never an error.</summary>
public sealed class FrozenTests
{
    /// <summary>x → conv A (8) → relu → [the case under test] …, plus a prunable side chain conv B → relu → conv C → output.</summary>
    private static (GraphBuilder B, string Features) Start(long opset = 13)
    {
        var b = new GraphBuilder(opset);
        var x = b.Input("x", 1, 3, 8, 8);
        var side = b.Relu(b.Conv(x, 3, 6));
        b.Output(b.Conv(side, 6, 2, k: 1), 1, 2, 8, 8);
        return (b, b.Relu(b.Conv(x, 3, 8)));
    }

    /// <summary>The group of conv A is frozen with a reason containing <paramref name="expected"/>; the side chain still prunes and the model runs.</summary>
    private static void AssertFrozen(GraphBuilder b, string expected)
    {
        using var model = b.Model();
        var groups = Harness.Analyze(model);
        var side = groups[0];
        var features = groups[2];
        Assert.True(side.Prunable, side.ToString());
        Assert.True(features.Frozen, features.ToString());
        Assert.Contains(expected, features.Reason);
        var before = Harness.Run(model.ToBytes());
        var result = ChannelPruner.Apply(model, groups, Harness.RandomKeep(groups, 0.5, new Random(1)));
        Assert.DoesNotContain(features.Id, result.RemovedByGroup.Keys);
        Assert.Equal(before.Select(o => o.Shape), Harness.Run(model.ToBytes()).Select(o => o.Shape));
    }

    [Fact]
    public void Graph_output()
    {
        var (b, h) = Start();
        b.Output(h, 1, 8, 8, 8);
        AssertFrozen(b, "reaches graph output");
    }

    [Fact]
    public void Operator_without_a_rule()
    {
        var (b, h) = Start();
        b.Output(b.Conv(b.Node("LRN", [h], ("size", 3L)), 8, 2, k: 1), 1, 2, 8, 8);
        AssertFrozen(b, "LRN 'LRN_");
    }

    [Fact]
    public void Reshape_with_a_computed_shape()
    {
        var (b, h) = Start();
        var shape = b.Node("Shape", [b.Node("GlobalAveragePool", [h])]);
        var flat = b.Node("Reshape", [h, b.Node("Concat", [b.Node("Slice", [shape, b.Ints("s", 0), b.Ints("e", 1)]), b.Ints("rest", -1)], ("axis", 0L))]);
        b.Output(b.Node("Gemm", [flat, b.Init("fc", [512, 3])]), 1, 3);
        AssertFrozen(b, "has a computed shape");
    }

    [Fact]
    public void Channel_count_read_by_shape_and_used_elsewhere()
    {
        var (b, h) = Start();
        var channels = b.Node("Gather", [b.Node("Shape", [h]), b.Ints("one", 1)], ("axis", 0L));
        b.Output(b.Node("Cast", [channels], ("to", 1L)), 1);
        b.Output(b.Conv(h, 8, 2, k: 1), 1, 2, 8, 8);
        AssertFrozen(b, "channel count read by Shape");
    }

    [Fact]
    public void Capture_by_an_if_subgraph()
    {
        var (b, h) = Start();
        var branch = new OnnxSlim.GraphIO.Proto.GraphProto { Name = "then" };
        var relu = new OnnxSlim.GraphIO.Proto.NodeProto { OpType = "Relu", Name = "inner_relu" };
        relu.Input.Add(h);
        relu.Output.Add("inner_out");
        branch.Node.Add(relu);
        branch.Output.Add(new OnnxSlim.GraphIO.Proto.ValueInfoProto { Name = "inner_out", Type = new OnnxSlim.GraphIO.Proto.TypeProto { TensorType = new() { ElemType = 1 } } });
        var cond = b.Init("cond_f", [], [1f]);
        var flag = b.Node("Cast", [cond], ("to", 9L));
        var node = new OnnxSlim.GraphIO.Proto.NodeProto { OpType = "If", Name = "if" };
        node.Input.Add(flag);
        node.Output.Add("if_out");
        node.Attribute.Add(new OnnxSlim.GraphIO.Proto.AttributeProto { Name = "then_branch", Type = OnnxSlim.GraphIO.Proto.AttributeProto.Types.AttributeType.Graph, G = branch });
        node.Attribute.Add(new OnnxSlim.GraphIO.Proto.AttributeProto { Name = "else_branch", Type = OnnxSlim.GraphIO.Proto.AttributeProto.Types.AttributeType.Graph, G = branch.Clone() });
        b.Graph.Node.Add(node);
        b.Output("if_out", 1, 8, 8, 8);
        AssertFrozen(b, "captured by a subgraph of If 'if'");
    }

    [Fact]
    public void Grouped_transposed_conv()
    {
        var (b, h) = Start();
        b.Output(b.Node("ConvTranspose", [h, b.Init("wt", [8, 2, 2, 2])], ("group", 2L), ("strides", new long[] { 2, 2 })), 1, 4, 16, 16);
        AssertFrozen(b, "grouped transposed conv (group=2)");
    }

    [Fact]
    public void Depthwise_multiplier_reads_one_channel_per_conv_group()
    {
        var (b, h) = Start();
        b.Output(b.Conv(h, 8, 16, group: 8), 1, 16, 8, 8);
        AssertFrozen(b, "one channel per conv group");
    }

    [Fact]
    public void Split_into_implicit_equal_parts()
    {
        var (b, h) = Start(opset: 18);
        var parts = b.NodeWithOutputs("Split", [h], 2, ("axis", 1L), ("num_outputs", 2L));
        b.Output(b.Conv(parts[0], 4, 2, k: 1), 1, 2, 8, 8);
        b.Output(b.Conv(parts[1], 4, 2, k: 1), 1, 2, 8, 8);
        AssertFrozen(b, "implicit equal parts");
    }

    [Fact]
    public void Channel_shuffle_reshape_splits_channels()
    {
        var (b, h) = Start();
        var shuffled = b.Node("Reshape", [b.Node("Transpose", [b.Node("Reshape", [h, b.Ints("s1", 1, 2, 4, 8, 8)])], ("perm", new long[] { 0, 2, 1, 3, 4 })), b.Ints("s2", 1, 8, 8, 8)]);
        b.Output(b.Conv(shuffled, 8, 2, k: 1), 1, 2, 8, 8);
        AssertFrozen(b, "splits channels across dims");
    }

    [Fact]
    public void Resize_sizes_computed_from_another_tensor()
    {
        var (b, h) = Start();
        var other = b.Input("y", 1, 8, 16, 16);
        var sizes = b.Node("Shape", [other]);
        var up = b.Node("Resize", [h, "", "", sizes], ("mode", "nearest"));
        b.Output(b.Conv(up, 8, 2, k: 1), 1, 2, 16, 16);
        AssertFrozen(b, "computed sizes that do not come from its own input");
    }

    [Fact]
    public void Element_wise_with_an_untracked_activation()
    {
        var (b, h) = Start();
        var other = b.Input("y", 1, 8, 8, 8);
        b.Output(b.Conv(b.Node("Add", [h, other]), 8, 2, k: 1), 1, 2, 8, 8);
        AssertFrozen(b, "combines the channels with a computed tensor");
    }
}
