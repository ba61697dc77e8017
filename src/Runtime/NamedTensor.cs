using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxSlim.Runtime;

/// <summary>One named input or output: element type, shape and data (float, int64, int32, uint8 or bool arrays).</summary>
public sealed record NamedTensor(string Name, TensorElementType ElementType, long[] Shape, Array Data)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The values as float, for comparisons (integer outputs such as labels included).</summary>
    public float[] AsFloats() => Data switch
    {
        float[] f => f,
        long[] l => Array.ConvertAll(l, v => (float)v),
        int[] i => Array.ConvertAll(i, v => (float)v),
        byte[] b => Array.ConvertAll(b, v => (float)v),
        bool[] b => Array.ConvertAll(b, v => v ? 1f : 0f),
        Half[] h => Array.ConvertAll(h, v => (float)v),
        _ => throw new ArgumentException($"output '{Name}' has unsupported element type {ElementType}"),
    };

    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join("x", shape) + "]";
}
