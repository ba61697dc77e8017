using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;
using OnnxSlim.TestSupport;

namespace OnnxSlim.GraphIO.Tests;

/// <summary>The parallel parse gives the message a plain parse gives, whatever the fields around the weights.</summary>
public sealed class ModelParseTests
{
    private static byte[] ModelBytes()
    {
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixtures.BnResnet));
        var rng = new Random(5);
        // Raw data over the copy chunk (4 MiB): 4.5 MiB and exactly two chunks; fields after raw_data (doc_string,
        // data_location) too; one tensor in float_data.
        foreach (var (name, bytes) in new[] { ("big", (9 << 19) + 12), ("two_chunks", 8 << 20) })
        {
            var raw = new byte[bytes];
            rng.NextBytes(raw);
            proto.Graph.Initializer.Add(new TensorProto { Name = name, DataType = 1, Dims = { bytes / 4 }, RawData = ByteString.CopyFrom(raw), DocString = "after raw_data" });
        }
        proto.Graph.Initializer.Insert(0, new TensorProto { Name = "floats", DataType = 1, Dims = { 3 }, FloatData = { 1f, -2f, 3.5f } });
        proto.MetadataProps.Add(new StringStringEntryProto { Key = "after", Value = "the graph" });
        return proto.ToByteArray();
    }

    [Fact]
    public void Parsing_in_parallel_gives_the_plain_parse()
    {
        var bytes = ModelBytes();
        var plain = ModelProto.Parser.ParseFrom(bytes);
        var parallel = ModelParse.Parse(bytes, minBytes: 0);
        Assert.Equal(plain, parallel);
        Assert.Equal(bytes, parallel.ToByteArray());
        Assert.Equal(plain.Graph.Initializer.Select(t => t.Name), parallel.Graph.Initializer.Select(t => t.Name));
    }

    [Fact]
    public void Two_graph_fields_are_left_to_the_plain_parse()
    {
        // A second graph field merges into the first: the split does not apply, the plain parse's message comes back.
        var once = ModelBytes();
        var extra = new ModelProto { Graph = new GraphProto { Name = "second", Initializer = { new TensorProto { Name = "late", DataType = 1, Dims = { 1 }, FloatData = { 2f } } } } }.ToByteArray();
        byte[] bytes = [.. once, .. extra];
        Assert.Equal(ModelProto.Parser.ParseFrom(bytes), ModelParse.Parse(bytes, minBytes: 0));
    }
}
