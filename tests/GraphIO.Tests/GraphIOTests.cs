using OnnxSlim.TestSupport;
using Google.Protobuf;
using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;
using OnnxSlim.Runtime;

namespace OnnxSlim.GraphIO.Tests;

public sealed class GraphIOTests
{
    [Fact]
    public void Load_reads_graph_with_producers_consumers_and_weights()
    {
        using var model = OnnxModel.Load(Fixtures.BnResnet);
        var g = model.Graph;
        Assert.Equal(13, model.Opset);
        var convs = g.Nodes.Where(n => n.OpType == "Conv").ToList();
        Assert.Equal(21, g.Nodes.Count(n => n.OpType == "BatchNormalization"));
        Assert.NotEmpty(convs);
        var first = convs[0];
        var w = g.ResolveWeight(first.Inputs[1]);
        Assert.NotNull(w);
        Assert.Equal(4, w!.Tensor.Rank);
        Assert.Equal(w.Tensor.ElementCount, w.Tensor.ToFloats().Length);
        // The conv's output is read by the node that follows it.
        var consumer = Assert.Single(g.Consumers(first.Outputs[0]));
        Assert.Same(first, g.Producer(consumer.Inputs[0]));
        long parameters = g.Initializers.Values.Where(t => t.IsFloating).Sum(t => t.ElementCount);
        Assert.Equal(272_186, parameters - BatchNormStatistics(g));
    }

    // The fixture README counts 272,186 parameters: BatchNorm running statistics are buffers, not parameters.
    private static long BatchNormStatistics(Graph g) =>
        g.Nodes.Where(n => n.OpType == "BatchNormalization").Sum(n => g.Initializer(n.Inputs[3])!.ElementCount + g.Initializer(n.Inputs[4])!.ElementCount);

    [Fact]
    public void Round_trip_keeps_outputs_bit_identical()
    {
        string dir = Fixtures.TempDir();
        string copy = Path.Combine(dir, "copy.onnx");
        using (var model = OnnxModel.Load(Fixtures.BnResnet)) model.Save(copy);
        using var a = new ModelRunner(File.ReadAllBytes(Fixtures.BnResnet));
        using var b = new ModelRunner(File.ReadAllBytes(copy));
        var inputs = InputGenerator.Generate(a.Inputs, InputShapes.Resolve(a.Inputs, [], 4), seed: 3);
        var ra = a.Run(inputs)[0].AsFloats();
        var rb = b.Run(inputs)[0].AsFloats();
        Assert.Equal(ra, rb);
        Assert.Equal(ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixtures.BnResnet)), ModelProto.Parser.ParseFrom(File.ReadAllBytes(copy)));
    }

    [Fact]
    public void Bad_files_give_one_line_format_errors()
    {
        string dir = Fixtures.TempDir();
        var bytes = File.ReadAllBytes(Fixtures.BnResnet);
        string truncated = Path.Combine(dir, "truncated.onnx");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        string random = Path.Combine(dir, "random.onnx");
        var junk = new byte[4096];
        new Random(1).NextBytes(junk);
        File.WriteAllBytes(random, junk);
        string otherProto = Path.Combine(dir, "tensor.onnx");
        File.WriteAllBytes(otherProto, new TensorProto { Name = "x", DataType = 1, Dims = { 2 }, FloatData = { 1, 2 } }.ToByteArray());
        string empty = Path.Combine(dir, "empty.onnx");
        File.WriteAllBytes(empty, []);
        foreach (var path in new[] { Path.Combine(dir, "missing.onnx"), truncated, random, otherProto, empty, dir })
        {
            var e = Assert.Throws<ModelFormatException>(() => OnnxModel.Load(path));
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    [Fact]
    public void Fp16_weight_behind_cast_resolves_and_keeps_its_type_when_written()
    {
        var values = new[] { 1.5f, -2.25f, 0.125f, 3f };
        var w = Tensor.FromFloats("w16", [2, 2], values, DataType.Float16);
        var graph = new GraphProto { Name = "g", Initializer = { w.Proto } };
        graph.Node.Add(new NodeProto { OpType = "Cast", Input = { "w16" }, Output = { "w" }, Attribute = { new AttributeProto { Name = "to", I = 1, Type = AttributeProto.Types.AttributeType.Int } } });
        graph.Node.Add(new NodeProto { OpType = "Identity", Input = { "w" }, Output = { "w_id" } });
        graph.Node.Add(new NodeProto { OpType = "MatMul", Input = { "x", "w_id" }, Output = { "y" } });
        var model = OnnxModel.FromProto(new ModelProto { IrVersion = 8, OpsetImport = { new OperatorSetIdProto { Version = 13 } }, Graph = graph });
        var resolved = model.Graph.ResolveWeight("w_id");
        Assert.NotNull(resolved);
        Assert.Equal(2, resolved!.PassThrough.Count);
        Assert.Equal(values, resolved.Tensor.ToFloats());
        resolved.Tensor.SetFloats([1, 2], [7f, 8f]);
        Assert.Equal(DataType.Float16, resolved.Tensor.DataType);
        Assert.Equal(4, resolved.Tensor.Proto.RawData.Length);
        Assert.Equal([7f, 8f], model.Graph.Initializer("w16")!.ToFloats());
    }

    [Fact]
    public void External_data_is_read_from_the_side_file()
    {
        string dir = Fixtures.TempDir();
        var values = Enumerable.Range(0, 12).Select(i => i * 0.5f).ToArray();
        File.WriteAllBytes(Path.Combine(dir, "weights.bin"), [.. new byte[16], .. System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray()]);
        var t = new TensorProto { Name = "w", DataType = 1, Dims = { 3, 4 }, DataLocation = TensorProto.Types.DataLocation.External };
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
        t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "16" });
        t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = "48" });
        var graph = new GraphProto { Initializer = { t } };
        graph.Node.Add(new NodeProto { OpType = "MatMul", Input = { "x", "w" }, Output = { "y" } });
        var proto = new ModelProto { IrVersion = 8, OpsetImport = { new OperatorSetIdProto { Version = 13 } }, Graph = graph };
        string path = Path.Combine(dir, "m.onnx");
        File.WriteAllBytes(path, proto.ToByteArray());
        using var model = OnnxModel.Load(path);
        Assert.True(model.HasExternalData);
        Assert.Equal(values, model.Graph.Initializer("w")!.ToFloats());
        model.InlineExternalData();
        Assert.False(model.HasExternalData);
        Assert.Equal(values, model.Graph.Initializer("w")!.ToFloats());
    }

    /// <summary>A model of Relu(x) → a, then an If whose then-branch is <paramref name="thenBranch"/>.</summary>
    private static OnnxModel ReluThenIf(GraphProto thenBranch)
    {
        var graph = new GraphProto();
        graph.Node.Add(new NodeProto { OpType = "Relu", Input = { "x" }, Output = { "a" } });
        graph.Node.Add(new NodeProto
        {
            OpType = "If", Input = { "cond" }, Output = { "out" },
            Attribute = { new AttributeProto { Name = "then_branch", G = thenBranch, Type = AttributeProto.Types.AttributeType.Graph } },
        });
        return OnnxModel.FromProto(new ModelProto { IrVersion = 8, OpsetImport = { new OperatorSetIdProto { Version = 13 } }, Graph = graph });
    }

    [Fact]
    public void Values_read_inside_subgraphs_count_as_consumed_by_the_owning_node()
    {
        var body = new GraphProto { Name = "then", Output = { new ValueInfoProto { Name = "z" } } };
        body.Node.Add(new NodeProto { OpType = "Relu", Input = { "a" }, Output = { "z" } });
        var model = ReluThenIf(body);
        Assert.Contains(model.Graph.Consumers("a"), n => n.OpType == "If");
    }

    [Fact]
    public void Operators_inside_nested_subgraphs_are_listed()
    {
        var inner = new GraphProto { Name = "inner", Node = { new NodeProto { OpType = "NonMaxSuppression", Input = { "b", "s" }, Output = { "k" } } } };
        var body = new GraphProto { Name = "then", Node = { new NodeProto { OpType = "Loop", Output = { "z" },
            Attribute = { new AttributeProto { Name = "body", G = inner, Type = AttributeProto.Types.AttributeType.Graph } } } } };
        var model = ReluThenIf(body);
        Assert.Equal(["Loop", "NonMaxSuppression"], model.Graph.Nodes[1].SubgraphOpTypes().Order());
        Assert.Empty(model.Graph.Nodes[0].SubgraphOpTypes());
    }

    [Fact]
    public void The_nodes_computing_values_are_their_ancestors_only()
    {
        var graph = new GraphProto();
        graph.Node.Add(new NodeProto { OpType = "Relu", Input = { "x" }, Output = { "a" } });
        graph.Node.Add(new NodeProto { OpType = "Relu", Input = { "a" }, Output = { "b" } });
        graph.Node.Add(new NodeProto { OpType = "Relu", Input = { "x" }, Output = { "c" } });
        var model = OnnxModel.FromProto(new ModelProto { IrVersion = 8, OpsetImport = { new OperatorSetIdProto { Version = 13 } }, Graph = graph });
        Assert.Equal(["a", "b"], model.Graph.NodesComputing(["b"]).Select(n => n.Outputs[0]).Order());
        using var part = model.ExtractModel(model.Graph.NodesComputing(["a"]), ["a"], "test");
        Assert.Equal(["a"], part.Graph.Nodes.Select(n => n.Outputs[0]));
        Assert.Equal(["a"], part.Graph.OutputNames);
    }
}
