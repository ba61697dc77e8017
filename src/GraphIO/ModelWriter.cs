using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>
/// A model laid out for writing: one protobuf file, or, when it would not fit protobuf's 2 GB limit (or when
/// asked), the protobuf file plus one external data file beside it, as ONNX tools write them: initializers of
/// at least <see cref="ExternalThreshold"/> bytes move to the data file at 4 KiB-aligned offsets, and each keeps
/// location (relative to the model's folder), offset and length. The model in memory is not changed.
/// </summary>
public sealed class ModelWriter
{
    /// <summary>Tensors smaller than this stay inline (onnx's convert_model_to_external_data default).</summary>
    public const int ExternalThreshold = 1024;

    /// <summary>Offsets in the data file are multiples of this, so readers can map each tensor directly.</summary>
    public const int Alignment = 4096;

    private readonly ModelProto _proto;
    private readonly List<(long Offset, ReadOnlyMemory<byte> Bytes)> _data = [];

    private ModelWriter(ModelProto proto, string? dataFileName)
    {
        _proto = proto;
        DataFileName = dataFileName;
    }

    /// <summary>The external data file's name, relative to the model file's folder; null when the model is written inline.</summary>
    public string? DataFileName { get; }

    /// <summary>Bytes of the data file (0 when inline).</summary>
    public long DataBytes { get; private set; }

    /// <summary>The usual data file name for a model file: its name plus ".data" (slim.onnx → slim.onnx.data).</summary>
    public static string DataFileFor(string modelPath) => Path.GetFileName(modelPath) + ".data";

    /// <summary>Whether a model whose inline serialization takes <paramref name="inlineBytes"/> needs external data.</summary>
    public static bool NeedsExternalData(long inlineBytes, bool force, long inlineLimit = OnnxModel.MaxProtobufBytes) =>
        force || inlineBytes > inlineLimit;

    /// <summary>
    /// Lays out <paramref name="model"/> for a file named <paramref name="modelPath"/>: inline when it fits
    /// <paramref name="inlineLimit"/> and <paramref name="externalData"/> is false, else with external data.
    /// </summary>
    public static ModelWriter For(OnnxModel model, string modelPath, bool externalData, long inlineLimit = OnnxModel.MaxProtobufBytes)
    {
        var proto = model.ProtoForWriting();
        if (!NeedsExternalData(SerializedSize(proto), externalData, inlineLimit)) return new ModelWriter(proto, null);

        var writer = new ModelWriter(proto, DataFileFor(modelPath));
        long offset = 0;
        foreach (var t in proto.Graph.Initializer)
        {
            if (Payload(t) is not { Length: >= ExternalThreshold } bytes) continue;
            offset = (offset + Alignment - 1) / Alignment * Alignment;
            writer._data.Add((offset, bytes));
            t.ClearRawData();
            t.FloatData.Clear();
            t.DoubleData.Clear();
            t.Int64Data.Clear();
            t.DataLocation = TensorProto.Types.DataLocation.External;
            t.ExternalData.Clear();
            t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = writer.DataFileName });
            t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            offset += bytes.Length;
        }
        writer.DataBytes = offset;
        if (SerializedSize(proto) > OnnxModel.MaxProtobufBytes)
            throw new ModelFormatException("the model's graph is over protobuf's 2 GB limit even with its initializers in external data (large Constant nodes?)");
        return writer;
    }

    public void WriteModel(Stream stream) => _proto.WriteTo(stream);

    /// <summary>The external data file's bytes (nothing when inline).</summary>
    public void WriteData(Stream stream)
    {
        long at = 0;
        Span<byte> zeros = stackalloc byte[Alignment];
        zeros.Clear();
        foreach (var (offset, bytes) in _data)
        {
            while (at < offset)
            {
                int pad = (int)Math.Min(zeros.Length, offset - at);
                stream.Write(zeros[..pad]);
                at += pad;
            }
            stream.Write(bytes.Span);
            at += bytes.Length;
        }
    }

    /// <summary>
    /// Bytes the proto would take inline. Summed per tensor and node first: protobuf's own size is a 32-bit
    /// count, which wraps for a model over 2 GB.
    /// </summary>
    internal static long SerializedSize(ModelProto proto)
    {
        long parts = 0;
        foreach (var t in proto.Graph?.Initializer ?? []) parts += t.CalculateSize() + 16;
        foreach (var n in proto.Graph?.Node ?? []) parts += n.CalculateSize() + 16;
        // The rest (inputs, outputs, value_info, metadata) is small next to the weights; leave room for it.
        if (parts > OnnxModel.MaxProtobufBytes - (64 << 20)) return parts;
        return proto.CalculateSize();
    }

    /// <summary>A tensor's data as little-endian bytes, when it is stored raw or in a typed field that maps to bytes one to one.</summary>
    private static ReadOnlyMemory<byte>? Payload(TensorProto t)
    {
        if (t.HasRawData) return t.RawData.Memory;
        return t.DataType switch
        {
            DataType.Float when t.FloatData.Count > 0 => MemoryMarshal.AsBytes(t.FloatData.ToArray().AsSpan()).ToArray(),
            DataType.Double when t.DoubleData.Count > 0 => MemoryMarshal.AsBytes(t.DoubleData.ToArray().AsSpan()).ToArray(),
            DataType.Int64 when t.Int64Data.Count > 0 => MemoryMarshal.AsBytes(t.Int64Data.ToArray().AsSpan()).ToArray(),
            _ => null,
        };
    }
}
