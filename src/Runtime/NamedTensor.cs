using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxSlim.Runtime;

/// <summary>
/// One named input or output: element type, shape and data (float, double, <see cref="Half"/> for float16,
/// ORT's <see cref="BFloat16"/>, int64, int32, uint8 or bool arrays).
/// </summary>
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
        BFloat16[] b => Array.ConvertAll(b, v => v.ToFloat()),
        double[] d => Array.ConvertAll(d, v => (float)v),
        _ => throw new ArgumentException($"output '{Name}' has unsupported element type {ElementType}"),
    };

    /// <summary>
    /// Samples [0, count) along the first axis, sharing this tensor's data: <see cref="Data"/> then holds more values
    /// than the shape needs (the rest are the later samples). No copy, so holding a calibration set's first samples
    /// apart from the rest costs nothing; only for readers that index by the shape (the calibration passes), not for
    /// ONNX Runtime.
    /// </summary>
    public NamedTensor FirstRows(long count)
    {
        if (Shape.Length == 0 || count < 0 || count > Shape[0])
            throw new ArgumentException($"rows [0, {count}) are outside '{Name}' of shape {FormatShape(Shape)}");
        var shape = Shape.ToArray();
        shape[0] = count;
        return this with { Shape = shape };
    }

    /// <summary>Samples [start, start + count) along the first axis.</summary>
    public NamedTensor Rows(long start, long count)
    {
        if (Shape.Length == 0 || start < 0 || count < 0 || start + count > Shape[0])
            throw new ArgumentException($"rows [{start}, {start + count}) are outside '{Name}' of shape {FormatShape(Shape)}");
        long per = Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var shape = Shape.ToArray();
        shape[0] = count;
        var data = Array.CreateInstance(Data.GetType().GetElementType()!, count * per);
        Array.Copy(Data, start * per, data, 0, count * per);
        return this with { Shape = shape, Data = data };
    }

    /// <summary>The same name, element type, shape and values, bit for bit (what a run reads of a tensor).</summary>
    public bool SameAs(NamedTensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (Name != other.Name || ElementType != other.ElementType || !Shape.AsSpan().SequenceEqual(other.Shape)) return false;
        int n = checked((int)ElementCount);
        return Data.Length >= n && other.Data.Length >= n && Bytes(Data, n).SequenceEqual(Bytes(other.Data, n));
    }

    private static ReadOnlySpan<byte> Bytes(Array data, int n) => data switch
    {
        float[] f => System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan(0, n)),
        double[] d => System.Runtime.InteropServices.MemoryMarshal.AsBytes(d.AsSpan(0, n)),
        Half[] h => System.Runtime.InteropServices.MemoryMarshal.AsBytes(h.AsSpan(0, n)),
        BFloat16[] b => System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan(0, n)),
        long[] l => System.Runtime.InteropServices.MemoryMarshal.AsBytes(l.AsSpan(0, n)),
        int[] i => System.Runtime.InteropServices.MemoryMarshal.AsBytes(i.AsSpan(0, n)),
        byte[] b => b.AsSpan(0, n),
        bool[] b => System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan(0, n)),
        _ => throw new ArgumentException($"unsupported data {data.GetType().Name}", nameof(data)),
    };

    /// <summary>Float values converted to <paramref name="type"/> (float, double, float16 or bfloat16).</summary>
    public static Array FromFloats(ReadOnlySpan<float> values, TensorElementType type) => type switch
    {
        TensorElementType.Float => values.ToArray(),
        TensorElementType.Double => ConvertAll(values, v => (double)v),
        TensorElementType.Float16 => ConvertAll(values, v => (Half)v),
        TensorElementType.BFloat16 => ConvertAll(values, ToBFloat16),
        _ => throw new ArgumentException($"float data cannot feed an input of element type {type}"),
    };

    /// <summary>Whether <see cref="FromFloats"/> can produce this element type.</summary>
    public static bool IsFloating(TensorElementType type) =>
        type is TensorElementType.Float or TensorElementType.Double or TensorElementType.Float16 or TensorElementType.BFloat16;

    private static T[] ConvertAll<T>(ReadOnlySpan<float> values, Func<float, T> convert)
    {
        var result = new T[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = convert(values[i]);
        return result;
    }

    /// <summary>Round to nearest even on the upper 16 bits (what ONNX Runtime's own conversion does); NaN stays NaN.</summary>
    private static BFloat16 ToBFloat16(float v)
    {
        if (float.IsNaN(v)) return BFloat16.NaN;
        uint bits = BitConverter.SingleToUInt32Bits(v);
        bits += 0x7FFFu + ((bits >> 16) & 1);
        return new BFloat16((ushort)(bits >> 16));
    }

    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join("x", shape) + "]";
}
