using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>
/// A view over one TensorProto (an initializer or a Constant node's value). Data is decoded on
/// demand from whichever field holds it, so loading a model does not copy every weight twice.
/// </summary>
public sealed class Tensor : IEquatable<Tensor>
{
    private readonly ExternalDataStore? _external;

    internal Tensor(TensorProto proto, ExternalDataStore? external = null)
    {
        Proto = proto;
        _external = external;
    }

    internal TensorProto Proto { get; }
    public string Name => Proto.Name;
    public int DataType => Proto.DataType;
    public long[] Dims => [.. Proto.Dims];
    public int Rank => Proto.Dims.Count;
    public bool IsExternal => Proto.DataLocation == TensorProto.Types.DataLocation.External;

    /// <summary>The product of the dims; <see cref="ModelFormatException"/> when a dim is negative or the product overflows
    /// (models are checked on load, see <see cref="StorageProblem"/>, so this only throws for tensors built since).</summary>
    public long ElementCount => CountOf(Proto) ?? throw new ModelFormatException($"tensor '{Name}' has dims [{string.Join(",", Proto.Dims)}], which hold no valid element count");

    /// <summary>The product of the dims, or null when a dim is negative or the product does not fit in 63 bits.</summary>
    internal static long? CountOf(TensorProto proto)
    {
        long n = 1;
        foreach (long d in proto.Dims)
        {
            if (d < 0) return null;
            try { n = checked(n * d); }
            catch (OverflowException) { return null; }
        }
        return n;
    }

    /// <summary>
    /// Throws <see cref="ModelFormatException"/> when the stored data does not fit the dims and data type: negative
    /// or overflowing dims, an undefined data type, raw or typed data of the wrong size, external data entries that
    /// do not parse or point past their file. Checked for every tensor when a model is loaded.
    /// </summary>
    public void CheckStorage()
    {
        string dims = $"[{string.Join(",", Proto.Dims)}]";
        if (CountOf(Proto) is not { } n)
            throw new ModelFormatException($"tensor '{Name}' has dims {dims}: a dim is negative or their product overflows");
        if (!GraphIO.DataType.IsDefined(DataType))
            throw new ModelFormatException($"tensor '{Name}' has data type {DataType}, which ONNX does not define");
        long? bytes;
        try { bytes = GraphIO.DataType.StorageBytes(DataType, n); }
        catch (OverflowException) { throw new ModelFormatException($"tensor '{Name}' has dims {dims}: too many bytes to store"); }
        string type = GraphIO.DataType.Name(DataType);
        if (IsExternal)
        {
            if (bytes is null) throw new ModelFormatException($"tensor '{Name}' holds strings in external data, which ONNX does not allow");
            if (_external is null) { ExternalDataStore.Entries(Proto); return; }
            var range = _external.Locate(Proto);
            if (range.Length != bytes && (ExternalDataStore.Entries(Proto).Length is not null || range.Length < bytes))
                throw new ModelFormatException($"tensor '{Name}' has dims {dims} of {type} ({bytes} bytes) but its external data holds {range.Length} bytes");
            return;
        }
        if (Proto.HasRawData)
        {
            if (bytes is null) throw new ModelFormatException($"tensor '{Name}' holds strings in raw_data, which ONNX does not allow");
            if (Proto.RawData.Length != bytes)
                throw new ModelFormatException($"tensor '{Name}' has dims {dims} of {type} ({bytes} bytes) but raw_data holds {Proto.RawData.Length} bytes");
            return;
        }
        (string field, long have, long want) = DataType switch
        {
            GraphIO.DataType.Float => ("float_data", Proto.FloatData.Count, n),
            14 => ("float_data", Proto.FloatData.Count, 2 * n), // complex64: real and imaginary parts
            GraphIO.DataType.Double => ("double_data", Proto.DoubleData.Count, n),
            15 => ("double_data", Proto.DoubleData.Count, 2 * n),
            GraphIO.DataType.Int64 => ("int64_data", Proto.Int64Data.Count, n),
            12 or 13 => ("uint64_data", Proto.Uint64Data.Count, n), // uint32, uint64
            GraphIO.DataType.String => ("string_data", Proto.StringData.Count, n),
            // 4-bit types: exporters write one value per int32 or two; either fits.
            21 or 22 or 23 => ("int32_data", Proto.Int32Data.Count, Proto.Int32Data.Count == (n + 1) / 2 ? (n + 1) / 2 : n),
            _ => ("int32_data", Proto.Int32Data.Count, n),
        };
        if (have != want)
            throw new ModelFormatException(have == 0 && n > 0
                ? $"tensor '{Name}' has dims {dims} of {type} but holds no data"
                : $"tensor '{Name}' has dims {dims} of {type} ({want} values) but {field} holds {have}");
    }

    /// <summary>Copies the external bytes into raw_data (the exact bytes, any element type) and drops the reference.</summary>
    internal void InlineExternal()
    {
        if (!IsExternal) return;
        CheckStorage();
        var raw = RawBytes()!.Value;
        long need = GraphIO.DataType.StorageBytes(DataType, ElementCount)!.Value;
        Proto.ExternalData.Clear();
        Proto.ClearDataLocation();
        Proto.RawData = UnsafeByteOperations.UnsafeWrap(raw[..checked((int)need)]);
    }

    public bool IsFloating => GraphIO.DataType.IsFloating(DataType);

    /// <summary>The raw little-endian bytes of the data, wherever they are stored (null when in typed fields).</summary>
    private ReadOnlyMemory<byte>? RawBytes()
    {
        if (IsExternal)
        {
            if (_external is null) throw new ModelFormatException($"tensor '{Name}' uses external data but the model has no directory");
            return _external.Read(Proto);
        }
        // Typed: `cond ? memory : null` would give an empty ReadOnlyMemory (null converts through byte[]), not a null one,
        // and float_data weights would read as 0 bytes.
        return Proto.HasRawData ? Proto.RawData.Memory : (ReadOnlyMemory<byte>?)null;
    }

    /// <summary>
    /// The float32 values as their stored little-endian bytes, without a copy; false when they are not
    /// stored that way (typed fields or another element type: use <see cref="ToFloats"/>).
    /// </summary>
    public bool TryGetRawFloats(out ReadOnlyMemory<byte> bytes)
    {
        bytes = default;
        if (DataType != GraphIO.DataType.Float || RawBytes() is not { } raw) return false;
        long n = ElementCount;
        CheckSize(raw.Length, n, 4);
        bytes = raw[..checked((int)(n * 4))];
        return true;
    }

    public float[] ToFloats()
    {
        long n = ElementCount;
        var result = new float[n];
        var raw = RawBytes();
        switch (DataType)
        {
            case GraphIO.DataType.Float:
                if (raw is { } rf) MemoryMarshal.Cast<byte, float>(CheckSize(rf.Length, n, 4).Slice(rf.Span)).CopyTo(result);
                else CopyTyped(Proto.FloatData, result);
                break;
            case GraphIO.DataType.Double:
                if (raw is { } rd)
                {
                    var src = MemoryMarshal.Cast<byte, double>(CheckSize(rd.Length, n, 8).Slice(rd.Span));
                    for (int i = 0; i < n; i++) result[i] = (float)src[i];
                }
                else for (int i = 0; i < n; i++) result[i] = (float)Proto.DoubleData[i];
                break;
            case GraphIO.DataType.Float16:
                if (raw is { } rh)
                {
                    var src = MemoryMarshal.Cast<byte, Half>(CheckSize(rh.Length, n, 2).Slice(rh.Span));
                    for (int i = 0; i < n; i++) result[i] = (float)src[i];
                }
                else for (int i = 0; i < n; i++) result[i] = (float)BitConverter.UInt16BitsToHalf((ushort)Proto.Int32Data[i]);
                break;
            case GraphIO.DataType.BFloat16:
                if (raw is { } rb)
                {
                    var src = MemoryMarshal.Cast<byte, ushort>(CheckSize(rb.Length, n, 2).Slice(rb.Span));
                    for (int i = 0; i < n; i++) result[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
                }
                else for (int i = 0; i < n; i++) result[i] = BitConverter.Int32BitsToSingle(Proto.Int32Data[i] << 16);
                break;
            default:
                throw new ArgumentException($"tensor '{Name}' has data type {GraphIO.DataType.Name(DataType)}, not a floating type");
        }
        return result;
    }

    public long[] ToInt64s()
    {
        long n = ElementCount;
        var result = new long[n];
        var raw = RawBytes();
        switch (DataType)
        {
            case GraphIO.DataType.Int64:
                if (raw is { } r) MemoryMarshal.Cast<byte, long>(CheckSize(r.Length, n, 8).Slice(r.Span)).CopyTo(result);
                else for (int i = 0; i < n; i++) result[i] = Proto.Int64Data[i];
                break;
            case GraphIO.DataType.Int32:
                if (raw is { } r32)
                {
                    var src = MemoryMarshal.Cast<byte, int>(CheckSize(r32.Length, n, 4).Slice(r32.Span));
                    for (int i = 0; i < n; i++) result[i] = src[i];
                }
                else for (int i = 0; i < n; i++) result[i] = Proto.Int32Data[i];
                break;
            default:
                throw new ArgumentException($"tensor '{Name}' has data type {GraphIO.DataType.Name(DataType)}, not an integer type");
        }
        return result;
    }

    /// <summary>Replaces shape and data, keeping the stored element type (fp16 stays fp16).</summary>
    public void SetFloats(ReadOnlySpan<long> dims, ReadOnlySpan<float> values)
    {
        long n = 1;
        foreach (long d in dims) n *= d;
        if (n != values.Length) throw new ArgumentException($"tensor '{Name}': {values.Length} values do not fill shape [{string.Join(",", dims.ToArray())}]");
        byte[] bytes;
        switch (DataType)
        {
            case GraphIO.DataType.Float:
                bytes = MemoryMarshal.AsBytes(values).ToArray();
                break;
            case GraphIO.DataType.Double:
                bytes = new byte[values.Length * 8];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * 8), values[i]);
                break;
            case GraphIO.DataType.Float16:
                bytes = new byte[values.Length * 2];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)values[i]);
                break;
            case GraphIO.DataType.BFloat16:
                bytes = new byte[values.Length * 2];
                for (int i = 0; i < values.Length; i++)
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), (ushort)(BitConverter.SingleToInt32Bits(values[i]) >> 16));
                break;
            default:
                throw new ArgumentException($"tensor '{Name}' has data type {GraphIO.DataType.Name(DataType)}, not a floating type");
        }
        SetRaw(dims, bytes);
    }

    /// <summary>
    /// As <see cref="SetFloats"/> with the first <paramref name="count"/> of <paramref name="values"/>, taking the array
    /// over as the raw data of a float32 tensor instead of copying it (the caller no longer writes it); other element
    /// types are converted as by <see cref="SetFloats"/>.
    /// </summary>
    public void TakeFloats(ReadOnlySpan<long> dims, float[] values, int count)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (count < 0 || count > values.Length) throw new ArgumentException($"tensor '{Name}': {count} of {values.Length} values", nameof(count));
        if (DataType != GraphIO.DataType.Float || !BitConverter.IsLittleEndian)
        {
            SetFloats(dims, values.AsSpan(0, count));
            return;
        }
        long n = 1;
        foreach (long d in dims) n *= d;
        if (n != count) throw new ArgumentException($"tensor '{Name}': {count} values do not fill shape [{string.Join(",", dims.ToArray())}]");
        SetRaw(dims, new FloatArrayBytes(values, count).Memory);
    }

    public void SetInt64s(ReadOnlySpan<long> dims, ReadOnlySpan<long> values)
    {
        if (DataType == GraphIO.DataType.Int64) SetRaw(dims, MemoryMarshal.AsBytes(values).ToArray());
        else if (DataType == GraphIO.DataType.Int32)
        {
            var ints = new int[values.Length];
            for (int i = 0; i < ints.Length; i++) ints[i] = checked((int)values[i]);
            SetRaw(dims, MemoryMarshal.AsBytes(ints.AsSpan()).ToArray());
        }
        else throw new ArgumentException($"tensor '{Name}' has data type {GraphIO.DataType.Name(DataType)}, not an integer type");
    }

    private void SetRaw(ReadOnlySpan<long> dims, ReadOnlyMemory<byte> bytes)
    {
        Proto.Dims.Clear();
        foreach (long d in dims) Proto.Dims.Add(d);
        Proto.FloatData.Clear();
        Proto.DoubleData.Clear();
        Proto.Int32Data.Clear();
        Proto.Int64Data.Clear();
        Proto.ExternalData.Clear();
        Proto.ClearDataLocation();
        Proto.RawData = UnsafeByteOperations.UnsafeWrap(bytes);
    }

    public static Tensor FromFloats(string name, ReadOnlySpan<long> dims, ReadOnlySpan<float> values, int dataType = GraphIO.DataType.Float)
    {
        var t = new Tensor(new TensorProto { Name = name, DataType = dataType });
        t.SetFloats(dims, values);
        return t;
    }

    /// <param name="dataType">Int64 or Int32.</param>
    /// <summary>A float32 tensor over <paramref name="littleEndian"/> (taken, not copied: the caller no longer writes it).</summary>
    public static Tensor FromFloatBytes(string name, ReadOnlySpan<long> dims, byte[] littleEndian)
    {
        var t = new Tensor(new TensorProto { Name = name, DataType = GraphIO.DataType.Float, RawData = UnsafeByteOperations.UnsafeWrap(littleEndian) });
        foreach (long d in dims) t.Proto.Dims.Add(d);
        return t;
    }

    public static Tensor FromInt64s(string name, ReadOnlySpan<long> dims, ReadOnlySpan<long> values, int dataType = GraphIO.DataType.Int64)
    {
        var t = new Tensor(new TensorProto { Name = name, DataType = dataType });
        t.SetInt64s(dims, values);
        return t;
    }

    /// <summary>Two views are equal when they view the same stored tensor (one weight can feed several layers).</summary>
    public bool Equals(Tensor? other) => other is not null && ReferenceEquals(Proto, other.Proto);
    public override bool Equals(object? obj) => Equals(obj as Tensor);
    public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Proto);

    private ByteRange CheckSize(int available, long count, int elementSize)
    {
        long need = count * elementSize;
        if (available < need) throw new ModelFormatException($"tensor '{Name}' holds {available} bytes, its shape needs {need}");
        return new ByteRange((int)need);
    }

    private static void CopyTyped(Google.Protobuf.Collections.RepeatedField<float> src, float[] dst)
    {
        if (src.Count < dst.Length) throw new ModelFormatException($"tensor holds {src.Count} values, its shape needs {dst.Length}");
        src.CopyTo(dst, 0);
    }

    private readonly struct ByteRange(int length)
    {
        public ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> s) => s[..length];
    }
}
