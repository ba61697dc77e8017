using System.Runtime.InteropServices;
using System.Text;

namespace OnnxSlim.Runtime;

/// <summary>Reads and writes NumPy .npy files (version 1-3, little-endian float32/float64/int64, C order).</summary>
public static class NpyFile
{
    public sealed record NpyArray(long[] Shape, float[]? Floats, long[]? Longs);

    public static NpyArray Read(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"data file not found: {path}");
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream);
        var magic = reader.ReadBytes(6);
        if (magic.Length < 6 || magic[0] != 0x93 || Encoding.ASCII.GetString(magic, 1, 5) != "NUMPY")
            throw new ArgumentException($"'{path}' is not a .npy file");
        byte major = reader.ReadByte();
        reader.ReadByte();
        int headerLength = major == 1 ? reader.ReadUInt16() : (int)reader.ReadUInt32();
        string header = Encoding.Latin1.GetString(reader.ReadBytes(headerLength));
        string descr = Field(header, "descr", path);
        if (header.Contains("'fortran_order': True")) throw new ArgumentException($"'{path}' is Fortran-ordered; save it in C order");
        long[] shape = ParseShape(Field(header, "shape", path));
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return descr.Trim('\'') switch
        {
            "<f4" => new NpyArray(shape, ReadValues<float>(reader, n, path), null),
            "<f8" => new NpyArray(shape, Array.ConvertAll(ReadValues<double>(reader, n, path), v => (float)v), null),
            "<i8" => new NpyArray(shape, null, ReadValues<long>(reader, n, path)),
            "<i4" => new NpyArray(shape, null, Array.ConvertAll(ReadValues<int>(reader, n, path), v => (long)v)),
            _ => throw new ArgumentException($"'{path}' holds dtype {descr}; expected float32, float64, int32 or int64"),
        };
    }

    public static void WriteFloats(string path, long[] shape, ReadOnlySpan<float> data)
    {
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}";
        int pad = 64 - (10 + header.Length + 1) % 64;
        header = header + new string(' ', pad % 64) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, .. "NUMPY"u8, 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        stream.Write(MemoryMarshal.AsBytes(data));
    }

    private static T[] ReadValues<T>(BinaryReader reader, long n, string path) where T : unmanaged
    {
        var values = new T[n];
        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        if (reader.BaseStream.Read(bytes) != bytes.Length) throw new ArgumentException($"'{path}' is truncated");
        return values;
    }

    private static string Field(string header, string key, string path)
    {
        int k = header.IndexOf($"'{key}'", StringComparison.Ordinal);
        if (k < 0) throw new ArgumentException($"'{path}' has no '{key}' in its header");
        int colon = header.IndexOf(':', k);
        if (key == "shape")
        {
            int open = header.IndexOf('(', colon), close = header.IndexOf(')', open);
            return header[(open + 1)..close];
        }
        int end = header.IndexOf(',', colon);
        return header[(colon + 1)..end].Trim();
    }

    private static long[] ParseShape(string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse)];
}
