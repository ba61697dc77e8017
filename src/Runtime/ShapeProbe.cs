using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Runtime;

/// <summary>
/// Concrete shapes of intermediate values at a given input shape, read by running the model once in
/// ONNX Runtime with those values exposed as extra outputs. This handles what static inference
/// can't (shape subgraphs, data-dependent resizes in detection models).
/// </summary>
public static class ShapeProbe
{
    /// <summary>Shapes of the requested values, of the graph outputs, and of the inputs as they were fed.</summary>
    /// <param name="thenRun">Runs once more on the same session before it closes (e.g. the validation's reference outputs:
    /// one session of a large model instead of two). Ask it for the model's own outputs: <see cref="ModelRunner.Run"/> with output names.</param>
    public static Dictionary<string, long[]> Run(OnnxModel model, IEnumerable<string> values, IEnumerable<string> shapeOverrides, int seed = 0,
        Action<ModelRunner, IReadOnlyList<string>>? thenRun = null)
    {
        var ownOutputs = model.Graph.Outputs.Select(o => o.Name).ToList();
        using var runner = new ModelRunner(model, extraOutputs: values);
        var inputShapes = InputShapes.Resolve(runner.Inputs, shapeOverrides);
        var shapes = runner.RunShapes(InputGenerator.Generate(runner.Inputs, inputShapes, seed));
        foreach (var (name, shape) in inputShapes) shapes.TryAdd(name, shape);
        thenRun?.Invoke(runner, ownOutputs);
        return shapes;
    }
}

/// <summary>Runs a model with chosen intermediate values added as outputs and returns them.</summary>
public static class ActivationProbe
{
    public static Dictionary<string, NamedTensor> Run(OnnxModel model, IEnumerable<string> values, IEnumerable<string> shapeOverrides, int seed = 0)
    {
        using var runner = new ModelRunner(WithExtraOutputs(model, values), optimize: false);
        var shapes = InputShapes.Resolve(runner.Inputs, shapeOverrides);
        var inputs = InputGenerator.Generate(runner.Inputs, shapes, seed);
        return Run(runner, inputs);
    }

    public static Dictionary<string, NamedTensor> Run(ModelRunner runner, IReadOnlyList<NamedTensor> inputs) =>
        runner.Run(inputs).ToDictionary(t => t.Name, StringComparer.Ordinal);

    /// <summary>The model's bytes with the given values (those that exist and are not outputs yet) appended as graph outputs.</summary>
    public static byte[] WithExtraOutputs(OnnxModel model, IEnumerable<string> values)
    {
        var proto = WithExtraOutputProtos(model, values);
        long size = ModelWriter.SerializedSize(proto);
        if (size > OnnxModel.MaxProtobufBytes)
            throw new ModelFormatException($"the model is {size} bytes inline, over protobuf's 2 GB limit for one buffer (ONNX Runtime sessions take the model as one buffer)");
        return Google.Protobuf.MessageExtensions.ToByteArray(proto);
    }

    /// <summary>A copy of the model's proto (weight bytes shared) with the given values appended as graph outputs.</summary>
    internal static ModelProto WithExtraOutputProtos(OnnxModel model, IEnumerable<string> values)
    {
        var proto = model.Proto.Clone();
        var existing = new HashSet<string>(proto.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var produced = new HashSet<string>(proto.Graph.Node.SelectMany(n => n.Output), StringComparer.Ordinal);
        foreach (var v in values)
            if (produced.Contains(v) && existing.Add(v))
                proto.Graph.Output.Add(new ValueInfoProto { Name = v });
        return proto;
    }
}
