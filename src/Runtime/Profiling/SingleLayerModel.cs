using OnnxSlim.GraphIO;

namespace OnnxSlim.Runtime;

/// <summary>
/// A model of one layer alone (a Conv, ConvTranspose, Gemm or MatMul with its attributes), its input a graph input
/// of the given shape and its weight (and bias) constants of the given shapes: what <see cref="KernelProfiler"/>
/// times to learn how a layer's cost follows its channel counts. The weight values are arbitrary small
/// numbers (the time does not depend on them, barring denormals, which these are not).
/// </summary>
public static class SingleLayerModel
{
    private const string Input = "x", Weight = "w", Bias = "b", Output = "y";

    /// <param name="layer">The layer as the model has it; only its operator, domain and attributes are used.</param>
    /// <param name="convGroups">The "group" attribute to write (a depthwise conv's width); null: as the layer has it.</param>
    /// <param name="biasLength">Bias elements, 0 for none.</param>
    public static byte[] Build(Node layer, long[] inputShape, long[] weightShape, long biasLength, long? convGroups, long opset, long irVersion)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (layer.OpType is not ("Conv" or "ConvTranspose" or "Gemm" or "MatMul"))
            throw new ArgumentException($"only Conv, ConvTranspose, Gemm and MatMul layers are built alone, got {layer}", nameof(layer));
        if (inputShape.Any(d => d <= 0)) throw new ArgumentException($"input shape [{string.Join(",", inputShape)}] has a non-positive dim", nameof(inputShape));
        if (weightShape.Any(d => d <= 0)) throw new ArgumentException($"weight shape [{string.Join(",", weightShape)}] has a non-positive dim", nameof(weightShape));
        var model = new ModelBuilder("single-layer", "onnxslim-latency", irVersion, opset);
        string[] inputs = biasLength > 0 ? [Input, Weight, Bias] : [Input, Weight];
        var node = model.AddNodeLike(layer, "layer", inputs, [Output], without: convGroups is null ? null : "group");
        if (convGroups is long g) node.SetInt("group", g);
        model.AddInput(Input, DataType.Float, inputShape);
        model.AddOutput(Output);
        model.AddInitializer(Filled(Weight, weightShape));
        if (biasLength > 0) model.AddInitializer(Filled(Bias, [biasLength]));
        return model.ToBytes();
    }

    /// <summary>A seeded standard-normal input of the given shape named as <see cref="Build"/> names it.</summary>
    public static NamedTensor InputOf(long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var data = new float[n];
        var rng = new Random(1);
        for (long i = 0; i < n; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
        return new NamedTensor(Input, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, shape, data);
    }

    private static Tensor Filled(string name, long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        // A repeating block of small values: cheap to make for a 100 MB weight, and never denormal.
        var block = new float[Math.Min(n, 4099)];
        var rng = new Random(2);
        for (int i = 0; i < block.Length; i++) block[i] = (float)((rng.NextDouble() - 0.5) * 0.1);
        var bytes = new byte[checked(n * sizeof(float))];
        var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
        for (long at = 0; at < n; at += block.Length)
            block.AsSpan(0, (int)Math.Min(block.Length, n - at)).CopyTo(floats[(int)at..]);
        return Tensor.FromFloatBytes(name, shape, bytes);
    }
}
