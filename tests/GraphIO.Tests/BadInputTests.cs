using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;

namespace OnnxSlim.GraphIO.Tests;

/// <summary>Issue 12: what GraphIO refuses when a model is read, what it must read correctly, and how it writes.</summary>
public sealed class BadInputTests
{
    /// <summary>input [1,3,8,8] → Conv(<paramref name="width"/>) → Relu → output.</summary>
    private static GraphBuilder SmallConv(long ir = 8, int width = 4)
    {
        var b = new GraphBuilder(opset: 13);
        b.Build().IrVersion = ir;
        string x = b.Input("input", 1, 3, 8, 8);
        string y = b.Relu(b.Conv(x, 3, width));
        b.Output(y, 1, width, 8, 8);
        return b;
    }

    private static string Write(byte[] bytes, string name = "m.onnx")
    {
        string path = Path.Combine(Fixtures.TempDir(), name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static ModelFormatException Refused(string path, string expected)
    {
        var e = Assert.Throws<ModelFormatException>(() => OnnxModel.Load(path));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Theory]
    [InlineData(1UL << 62)]
    [InlineData((1UL << 32) + 5)]
    [InlineData(1UL << 31)]
    [InlineData(ulong.MaxValue)]
    public void A_length_prefix_longer_than_the_file_before_a_valid_model_is_refused(ulong length)
    {
        // Protobuf reads lengths as 32 bits: 2^62 reads as 0 (an empty graph), and the valid model after it parses as more fields.
        var good = SmallConv().Bytes();
        var prefix = new List<byte> { 0x3A };
        for (ulong v = length; ; v >>= 7)
        {
            prefix.Add((byte)(v < 0x80 ? v : (v & 0x7F) | 0x80));
            if (v < 0x80) break;
        }
        string path = Write([.. prefix, .. good]);
        Refused(path, "declares");
        Assert.Throws<ModelFormatException>(() => OnnxModel.FromBytes(File.ReadAllBytes(path)));
    }

    [Fact]
    public void Weights_stored_in_float_data_read_as_their_values()
    {
        var b = SmallConv();
        var w = b.Graph.Initializer.First(t => t.Dims.Count == 4);
        var values = new Tensor(w).ToFloats();
        w.ClearRawData();
        w.FloatData.Add(values);
        using var model = OnnxModel.Load(Write(b.Bytes()));
        var t = model.Graph.Initializer(w.Name)!;
        Assert.False(t.TryGetRawFloats(out _));
        Assert.Equal(values, t.ToFloats());
    }

    [Fact]
    public void Tensor_data_that_does_not_fit_its_dims_is_refused_naming_the_tensor()
    {
        var b = SmallConv();
        var w = b.Graph.Initializer.First(t => t.Dims.Count == 4);
        w.RawData = ByteString.CopyFrom(w.RawData.ToByteArray()[..^4]);
        Refused(Write(b.Bytes()), $"tensor '{w.Name}' has dims [4,3,3,3] of float32 (432 bytes) but raw_data holds 428 bytes");

        b = SmallConv();
        w = b.Graph.Initializer.First(t => t.Dims.Count == 4);
        w.Dims[0] = 1L << 40;
        Refused(Write(b.Bytes()), $"tensor '{w.Name}'");

        b = SmallConv();
        w = b.Graph.Initializer.First(t => t.Dims.Count == 4);
        w.Dims[1] = -1;
        Refused(Write(b.Bytes()), "a dim is negative");

        b = SmallConv();
        b.Graph.Initializer.First(t => t.Dims.Count == 4).DataType = 99;
        Refused(Write(b.Bytes()), "data type 99");
    }

    [Theory]
    [InlineData(1L << 31)]
    [InlineData(1L << 40)]
    [InlineData((1L << 32) + 5)]
    public void Graph_input_dims_beyond_32_bits_are_refused(long dim)
    {
        var b = SmallConv();
        b.Graph.Input[0].Type.TensorType.Shape.Dim[2].DimValue = dim;
        Refused(Write(b.Bytes()), $"graph input 'input' declares dim 2 = {dim}");
    }

    /// <summary>A model whose conv weight lives in weights.bin, with the given external_data entries.</summary>
    private static string ExternalModel(params (string Key, string Value)[] entries)
    {
        var b = SmallConv();
        var w = b.Graph.Initializer.First(t => t.Dims.Count == 4);
        string dir = Fixtures.TempDir();
        File.WriteAllBytes(Path.Combine(dir, "weights.bin"), [.. new byte[16], .. w.RawData.ToByteArray()]);
        w.ClearRawData();
        w.DataLocation = TensorProto.Types.DataLocation.External;
        foreach (var (k, v) in entries) w.ExternalData.Add(new StringStringEntryProto { Key = k, Value = v });
        string path = Path.Combine(dir, "m.onnx");
        File.WriteAllBytes(path, b.Bytes());
        return path;
    }

    [Theory]
    [InlineData("abc", "offset 'abc'")]
    [InlineData("-16", "offset '-16'")]
    [InlineData("1e3", "offset '1e3'")]
    [InlineData("99999999999999999999", "offset '99999999999999999999'")]
    [InlineData("9223372036854775807", "reads bytes")]
    public void External_data_offsets_that_are_not_byte_counts_are_refused(string offset, string expected)
    {
        Refused(ExternalModel(("location", "weights.bin"), ("offset", offset), ("length", "432")), expected);
    }

    [Fact]
    public void External_data_entries_are_checked_when_the_model_is_read()
    {
        using (var good = OnnxModel.Load(ExternalModel(("location", "weights.bin"), ("offset", "16"), ("length", "432")))) Assert.True(good.HasExternalData);
        Refused(ExternalModel(("location", "weights.bin"), ("offset", "16"), ("length", "4.5")), "length '4.5'");
        Refused(ExternalModel(("location", "weights.bin"), ("offset", "16"), ("length", "400")), "external data holds 400 bytes");
        Refused(ExternalModel(("location", "weights.bin"), ("offset", "16"), ("offset", "0")), "key 'offset' twice");
        Refused(ExternalModel(("location", "../outside.bin")), "outside the model's folder");
        Refused(ExternalModel(("location", "nosuch.bin")), "not found");
        Refused(ExternalModel(("offset", "16")), "without a location");
    }

    [Fact]
    public void External_data_is_written_beside_the_model_when_asked_and_reads_back_the_same()
    {
        string dir = Fixtures.TempDir();
        var b = SmallConv(width: 16);
        string source = Path.Combine(dir, "m.onnx");
        b.Save(source);
        string output = Path.Combine(dir, "out.onnx");
        using (var model = OnnxModel.Load(source)) model.Save(output, externalData: true);

        string data = Path.Combine(dir, "out.onnx.data");
        Assert.True(File.Exists(data));
        var written = ModelProto.Parser.ParseFrom(File.ReadAllBytes(output));
        var moved = written.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External).ToList();
        var w = Assert.Single(moved); // the 1,728-byte weight; the 64-byte bias stays inline (under 1 KiB)
        Assert.Equal("out.onnx.data", w.ExternalData.Single(e => e.Key == "location").Value);
        Assert.Equal(0, long.Parse(w.ExternalData.Single(e => e.Key == "offset").Value) % ModelWriter.Alignment);

        using var a = new ModelRunner(File.ReadAllBytes(source));
        var inputs = InputGenerator.Generate(a.Inputs, InputShapes.Resolve(a.Inputs, []), seed: 1);
        using var reread = OnnxModel.Load(output);
        Assert.True(reread.HasExternalData);
        reread.InlineExternalData();
        using var c = new ModelRunner(reread.ToBytes());
        Assert.Equal(a.Run(inputs)[0].AsFloats(), c.Run(inputs)[0].AsFloats());
    }

    [Fact]
    public void External_data_is_chosen_when_the_inline_model_would_not_fit()
    {
        using var model = SmallConv().Model();
        long size = ModelWriter.SerializedSize(model.Proto);
        Assert.Null(ModelWriter.For(model, "out.onnx", externalData: false).DataFileName);
        // The same decision at a smaller limit, instead of writing 2 GB.
        Assert.Equal("out.onnx.data", ModelWriter.For(model, "out.onnx", externalData: false, inlineLimit: size - 1).DataFileName);
        Assert.True(ModelWriter.NeedsExternalData(OnnxModel.MaxProtobufBytes + 1, force: false));
        Assert.False(ModelWriter.NeedsExternalData(OnnxModel.MaxProtobufBytes, force: false));
        Assert.True(ModelWriter.NeedsExternalData(10, force: true));
    }

    [Fact]
    public void Ir3_initializers_listed_as_inputs_follow_the_initializers_when_written()
    {
        var b = SmallConv(ir: 3);
        foreach (var t in b.Graph.Initializer)
        {
            var shape = new TensorShapeProto();
            foreach (long d in t.Dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            b.Graph.Input.Add(new ValueInfoProto { Name = t.Name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = t.DataType, Shape = shape } } });
        }
        using var model = b.Model();
        var conv = model.Graph.Nodes.First(n => n.OpType == "Conv");
        var weight = model.Graph.Initializer(conv.Inputs[1])!;
        ModelOps.SliceAxis(model, weight.Name, 0, [0, 2]);
        string bias = conv.Inputs[2];
        conv.Inputs.RemoveAt(2);
        model.Graph.Proto.Initializer.Remove(model.Graph.Proto.Initializer.First(t => t.Name == bias));
        model.Graph.Proto.Initializer.Add(Tensor.FromFloats("added", [2], [1f, 2f]).Proto);
        model.Graph.Reindex();

        var written = ModelProto.Parser.ParseFrom(model.ToBytes());
        var inputs = written.Graph.Input.ToDictionary(i => i.Name);
        foreach (var t in written.Graph.Initializer)
            Assert.Equal(t.Dims, inputs[t.Name].Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        Assert.Equal([2L, 3, 3, 3], inputs[weight.Name].Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        Assert.False(inputs.ContainsKey(bias)); // not left behind as a new runtime input
        Assert.Equal(["input"], written.Graph.Input.Select(i => i.Name).Where(n => written.Graph.Initializer.All(t => t.Name != n)));
    }
}
