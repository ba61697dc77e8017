using OnnxSlim.GraphIO.Proto;
using OnnxSlim.TestSupport;

namespace OnnxSlim.GraphIO.Tests;

public sealed class ShapeInferenceModelTests
{
    [Fact]
    public void Inputs_get_concrete_dims_large_weights_are_declared_and_no_other_shape_is()
    {
        var b = new GraphBuilder(seed: 2);
        string x = b.Input("x", -1, 64, -1, -1);
        string wide = b.Conv(x, 64, 64);          // 36,864 weights: declared, not carried
        string narrow = b.Conv(b.Relu(wide), 64, 4, k: 1);  // 256: carried
        b.Output(narrow, -1, 4, -1, -1);
        b.Declare(wide, 1, 64, 99, 99);
        using var model = b.Model();
        string weight = model.Graph.Producer(wide)!.Input(1);
        int carried = model.Graph.Initializers.Count();

        var proto = ModelProto.Parser.ParseFrom(model.ToBytesForShapeInference([wide], new Dictionary<string, long[]> { ["x"] = [2, 64, 10, 12] }));

        var graph = proto.Graph;
        Assert.Empty(graph.ValueInfo);
        Assert.Equal(new long[] { 2, 64, 10, 12 }, graph.Input.Single(i => i.Name == "x").Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        Assert.Equal(new long[] { 64, 64, 3, 3 }, graph.Input.Single(i => i.Name == weight).Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        Assert.DoesNotContain(graph.Initializer, t => t.Name == weight);
        Assert.Equal(carried - 1, graph.Initializer.Count);
        Assert.Equal([narrow, wide], graph.Output.Select(o => o.Name));
        Assert.All(graph.Output, o => Assert.True(o.Type?.TensorType?.Shape is null, o.Name));
        // The model itself is unchanged.
        Assert.Equal(carried, model.Graph.Initializers.Count());
    }
}
