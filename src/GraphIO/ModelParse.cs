using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>
/// Parses a model's framing-checked bytes (<see cref="ProtobufFraming"/>) with the graph's initializers on every core:
/// each initializer is its own message, parsed alone and listed in file order, and the other fields are merged piece by
/// piece in file order, so the message is the one a plain parse gives. Why: the parse copies every weight onto the heap
/// on one core (VGG-16's 553 MB: ~0.45 of the load's ~0.55 s, the other core idle).
/// </summary>
internal static class ModelParse
{
    private const int GraphField = 7, InitializerField = 5, RawDataField = 9;

    /// <summary>Raw data is copied in pieces of this size, on every core.</summary>
    private const int CopyChunk = 4 << 20;

    /// <summary>Smaller models are parsed plainly: splitting them buys nothing.</summary>
    private const int ParallelMinBytes = 64 << 20;

    public static ModelProto Parse(ReadOnlySpan<byte> bytes) => Parse(bytes, ParallelMinBytes);

    /// <param name="minBytes">Below this length, a plain parse (tests pass 0).</param>
    internal static unsafe ModelProto Parse(ReadOnlySpan<byte> bytes, int minBytes)
    {
        if (bytes.Length < minBytes || Graph(bytes) is not { } graphField || Initializers(bytes, graphField.Start, graphField.End) is not { Count: > 1 } initializers)
            return ModelProto.Parser.ParseFrom(bytes);
        var model = new ModelProto();
        model.MergeFrom(bytes[..graphField.Tag]);
        var graph = new GraphProto();
        int pos = graphField.Start;
        foreach (var (tag, start, end) in initializers)
        {
            if (tag > pos) graph.MergeFrom(bytes[pos..tag]);
            pos = end;
        }
        if (pos < graphField.End) graph.MergeFrom(bytes[pos..graphField.End]);
        // Each tensor without its large raw_data (merged around it), then those bytes copied a chunk at a time on every core.
        var tensors = new TensorProto[initializers.Count];
        var raw = new (int Start, byte[] Bytes)?[initializers.Count];
        fixed (byte* data = bytes)
        {
            nint at = (nint)data;
            int length = bytes.Length;
            Parallel.For(0, tensors.Length, i =>
            {
                var span = new ReadOnlySpan<byte>((void*)at, length);
                var (_, start, end) = initializers[i];
                if (RawData(span, start, end) is { } r)
                {
                    var tensor = new TensorProto();
                    tensor.MergeFrom(span[start..r.Tag]);
                    var copy = GC.AllocateUninitializedArray<byte>(r.End - r.Start);
                    tensor.RawData = UnsafeByteOperations.UnsafeWrap(copy);
                    if (r.End < end) tensor.MergeFrom(span[r.End..end]);
                    tensors[i] = tensor;
                    raw[i] = (r.Start, copy);
                }
                else tensors[i] = TensorProto.Parser.ParseFrom(span[start..end]);
            });
            var chunks = new List<(int Tensor, int Offset, int Count)>();
            for (int i = 0; i < raw.Length; i++)
                if (raw[i] is { } r)
                    for (int offset = 0; offset < r.Bytes.Length; offset += CopyChunk) chunks.Add((i, offset, Math.Min(CopyChunk, r.Bytes.Length - offset)));
            Parallel.For(0, chunks.Count, c =>
            {
                var (i, offset, count) = chunks[c];
                var (start, copy) = raw[i]!.Value;
                new ReadOnlySpan<byte>((byte*)at + start + offset, count).CopyTo(copy.AsSpan(offset, count));
            });
        }
        graph.Initializer.AddRange(tensors);
        model.Graph = graph;
        if (graphField.End < bytes.Length) model.MergeFrom(bytes[graphField.End..]);
        return model;
    }

    /// <summary>A tensor's raw_data of at least <see cref="CopyChunk"/> bytes (tag position, value range) when it is its only one; else null.</summary>
    private static (int Tag, int Start, int End)? RawData(ReadOnlySpan<byte> bytes, int start, int end)
    {
        (int, int, int)? found = null;
        int pos = start;
        while (pos < end)
        {
            if (Field(bytes, ref pos, end) is not { } f) return null;
            if (f.Number != RawDataField) continue;
            if (found is not null || f.Start < 0) return null;
            found = (f.Tag, f.Start, pos);
        }
        return found is { } r && r.Item3 - r.Item2 >= CopyChunk ? found : null;
    }

    /// <summary>The graph field's tag position and value range, when the model has exactly one and no group fields at its top level.</summary>
    private static (int Tag, int Start, int End)? Graph(ReadOnlySpan<byte> bytes)
    {
        (int, int, int)? found = null;
        int pos = 0;
        while (pos < bytes.Length)
        {
            if (Field(bytes, ref pos, bytes.Length) is not { } f) return null;
            if (f.Number != GraphField) continue;
            if (found is not null || f.Start < 0) return null;
            found = (f.Tag, f.Start, pos);
        }
        return found;
    }

    /// <summary>The graph's initializer fields (tag position, value range), in file order; null when it has a group field.</summary>
    private static List<(int Tag, int Start, int End)>? Initializers(ReadOnlySpan<byte> bytes, int start, int end)
    {
        var list = new List<(int, int, int)>();
        int pos = start;
        while (pos < end)
        {
            if (Field(bytes, ref pos, end) is not { } f) return null;
            if (f.Number == InitializerField && f.Start >= 0) list.Add((f.Tag, f.Start, pos));
        }
        return list;
    }

    /// <summary>
    /// Steps over one field: its number, tag position and, for a length-delimited one, where its value starts (else -1);
    /// null for a group (wire types 3, 4), which the caller leaves to the plain parse. The framing was checked before.
    /// </summary>
    private static (int Number, int Tag, int Start)? Field(ReadOnlySpan<byte> bytes, ref int pos, int end)
    {
        int tagAt = pos;
        ulong tag = Varint(bytes, ref pos);
        int number = (int)(tag >> 3);
        switch ((int)(tag & 7))
        {
            case 0: Varint(bytes, ref pos); return (number, tagAt, -1);
            case 1: pos += 8; return (number, tagAt, -1);
            case 5: pos += 4; return (number, tagAt, -1);
            case 2:
                int length = (int)Varint(bytes, ref pos);
                int start = pos;
                pos += length;
                return pos <= end ? (number, tagAt, start) : null;
            default: return null;
        }
    }

    private static ulong Varint(ReadOnlySpan<byte> bytes, ref int pos)
    {
        ulong value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = bytes[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
    }
}
