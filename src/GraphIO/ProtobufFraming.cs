using Google.Protobuf.Reflection;

namespace OnnxSlim.GraphIO;

/// <summary>
/// Checks the framing of serialized protobuf bytes against the schema before they are parsed. Protobuf
/// parsers read a length prefix as 32 bits and drop the rest: a graph field with a 2^62 length reads as an
/// empty graph, and the valid model after it parses as more fields of the same message. Here every length
/// must fit in what encloses it, every varint must end within 10 bytes, and every wire type must exist.
/// </summary>
internal static class ProtobufFraming
{
    /// <summary>Protobuf's own default recursion limit.</summary>
    private const int MaxDepth = 100;

    /// <summary>Null when the framing is sound, else what is wrong and at which byte.</summary>
    public static string? Problem(ReadOnlySpan<byte> data, MessageDescriptor descriptor)
    {
        int pos = 0;
        return Message(data, ref pos, data.Length, descriptor, depth: 0, endGroupField: 0);
    }

    /// <summary>Walks fields from <paramref name="pos"/> to <paramref name="end"/> (or to the end-group tag of <paramref name="endGroupField"/>).</summary>
    private static string? Message(ReadOnlySpan<byte> data, ref int pos, int end, MessageDescriptor? descriptor, int depth, int endGroupField)
    {
        if (depth > MaxDepth) return $"messages nested deeper than {MaxDepth} levels at byte {pos}";
        while (pos < end)
        {
            int tagAt = pos;
            if (Varint(data, ref pos, end) is not { } tag) return $"a field tag at byte {tagAt} runs past the end of its message";
            int field = (int)Math.Min(tag >> 3, int.MaxValue);
            if (field == 0) return $"field number 0 at byte {tagAt}";
            switch ((int)(tag & 7))
            {
                case 0:
                    if (Varint(data, ref pos, end) is null) return $"field {field} at byte {tagAt}: a varint runs past the end of its message";
                    break;
                case 1:
                    if (end - pos < 8) return $"field {field} at byte {tagAt}: 8 bytes declared, {end - pos} remain";
                    pos += 8;
                    break;
                case 5:
                    if (end - pos < 4) return $"field {field} at byte {tagAt}: 4 bytes declared, {end - pos} remain";
                    pos += 4;
                    break;
                case 2:
                {
                    if (Varint(data, ref pos, end) is not { } length) return $"field {field} at byte {tagAt}: its length runs past the end of its message";
                    if (length > (ulong)(end - pos))
                        return $"field {field} at byte {tagAt} declares {length} bytes where {end - pos} remain";
                    int fieldEnd = pos + (int)length;
                    var fd = descriptor?.FindFieldByNumber(field);
                    if (fd is { FieldType: FieldType.Message })
                    {
                        if (Message(data, ref pos, fieldEnd, fd.MessageType, depth + 1, 0) is { } inner) return inner;
                    }
                    pos = fieldEnd;
                    break;
                }
                case 3:
                    if (Message(data, ref pos, end, null, depth + 1, field) is { } group) return group;
                    break;
                case 4:
                    if (field != endGroupField) return $"an end-group tag for field {field} at byte {tagAt} with no group open";
                    return null;
                default:
                    return $"field {field} at byte {tagAt} has wire type {tag & 7}, which protobuf does not define";
            }
        }
        return endGroupField != 0 ? $"group field {endGroupField} is not closed before the end of its message" : null;
    }

    /// <summary>A base-128 varint of at most 10 bytes ending before <paramref name="end"/>; null when it does not.</summary>
    private static ulong? Varint(ReadOnlySpan<byte> data, ref int pos, int end)
    {
        ulong value = 0;
        for (int shift = 0, i = 0; i < 10; i++, shift += 7)
        {
            if (pos >= end) return null;
            byte b = data[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        return null;
    }
}
