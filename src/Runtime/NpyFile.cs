using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;

namespace OnnxSlim.Runtime;

/// <summary>
/// Reads and writes NumPy .npy files (version 1-3, little-endian float16/32/64, int32/64, uint8, bool; C order)
/// and reads .npz archives (one .npy per array, stored or deflated). Every header field is checked before
/// anything is allocated: a bad file is an <see cref="ArgumentException"/> naming it.
/// </summary>
public static class NpyFile
{
    /// <summary>Float data as float32 (<see cref="Floats"/>), integer data as int64 (<see cref="Longs"/>).</summary>
    public sealed record NpyArray(long[] Shape, float[]? Floats, long[]? Longs)
    {
        public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    }

    private const int MaxHeaderBytes = 1 << 16;

    public static NpyArray Read(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException(Directory.Exists(path) ? $"'{path}' is a directory, not a .npy file" : $"data file not found: {path}");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(stream, path, stream.Length);
    }

    /// <summary>Where an array's values start and what they are: the parsed header of a .npy.</summary>
    /// <param name="Descr">NumPy's dtype string ('&lt;f4', '|u1', ...), already checked to be one this reader knows.</param>
    public sealed record NpyHeader(long[] Shape, string Descr, long DataOffset)
    {
        public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
        public int ElementSize => NpyFile.ElementSize(Descr, "");
        public bool IsFloating => Descr is "<f2" or "<f4" or "<f8";
    }

    /// <summary>The header of a .npy file, checked as <see cref="Read(string)"/> checks it, without reading the values.</summary>
    public static NpyHeader ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException(Directory.Exists(path) ? $"'{path}' is a directory, not a .npy file" : $"data file not found: {path}");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 12);
        return ReadHeader(stream, path, stream.Length);
    }

    /// <param name="length">Bytes available in <paramref name="stream"/>, to refuse sizes the file cannot hold.</param>
    public static NpyArray Read(Stream stream, string source, long length)
    {
        var header = ReadHeader(stream, source, length);
        var (shape, descr, n) = (header.Shape, header.Descr, header.ElementCount);

        return descr switch
        {
            "<f4" => new NpyArray(shape, ReadValues<float>(stream, n, source), null),
            "<f8" => new NpyArray(shape, Array.ConvertAll(ReadValues<double>(stream, n, source), v => (float)v), null),
            "<f2" => new NpyArray(shape, Array.ConvertAll(ReadValues<Half>(stream, n, source), v => (float)v), null),
            "<i8" => new NpyArray(shape, null, ReadValues<long>(stream, n, source)),
            "<i4" => new NpyArray(shape, null, Array.ConvertAll(ReadValues<int>(stream, n, source), v => (long)v)),
            "|u1" => new NpyArray(shape, null, Array.ConvertAll(ReadValues<byte>(stream, n, source), v => (long)v)),
            "|b1" => new NpyArray(shape, null, Array.ConvertAll(ReadValues<byte>(stream, n, source), v => v != 0 ? 1L : 0L)),
            _ => throw new ArgumentException($"'{source}' holds dtype {descr}; expected float16/32/64, int32/64, uint8 or bool"),
        };
    }

    /// <summary>Reads and checks the header; <paramref name="stream"/> is left at the first value.</summary>
    /// <param name="length">Bytes available in <paramref name="stream"/>, to refuse sizes the file cannot hold.</param>
    public static NpyHeader ReadHeader(Stream stream, string source, long length)
    {
        Span<byte> prefix = stackalloc byte[10];
        if (ReadFully(stream, prefix[..8]) < 8 || prefix[0] != 0x93 || !prefix[1..6].SequenceEqual("NUMPY"u8))
            throw new ArgumentException($"'{source}' is not a .npy file");
        byte major = prefix[6];
        if (major is < 1 or > 3) throw new ArgumentException($"'{source}' has .npy version {major}; versions 1 to 3 are read");
        int headerLength;
        if (major == 1)
        {
            if (ReadFully(stream, prefix[..2]) < 2) throw new ArgumentException($"'{source}' is truncated");
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix);
        }
        else
        {
            if (ReadFully(stream, prefix[..4]) < 4) throw new ArgumentException($"'{source}' is truncated");
            uint l = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
            if (l > MaxHeaderBytes) throw new ArgumentException($"'{source}' has a {l}-byte header; at most {MaxHeaderBytes} is accepted");
            headerLength = (int)l;
        }
        var headerBytes = new byte[headerLength];
        if (ReadFully(stream, headerBytes) < headerLength) throw new ArgumentException($"'{source}' is truncated in its header");
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);

        string descr = Field(header, "descr", source).Trim().Trim('\'', '"');
        string order = Field(header, "fortran_order", source).Trim();
        if (order == "True") throw new ArgumentException($"'{source}' is Fortran-ordered; save it in C order");
        if (order != "False") throw new ArgumentException($"'{source}' has fortran_order '{order}'");
        long[] shape = ParseShape(Field(header, "shape", source), source);
        long n = 1;
        foreach (long d in shape)
        {
            // Both at most Array.MaxLength before the product: it cannot wrap past long.
            if (d > Array.MaxLength || (n *= d) > Array.MaxLength) throw new ArgumentException($"'{source}' declares shape {Describe(shape)}: more elements than one array can hold");
        }
        long dataBytes = n * ElementSize(descr, source);
        long headerEnd = (major == 1 ? 10 : 12) + headerLength;
        if (length >= 0 && headerEnd + dataBytes > length)
            throw new ArgumentException($"'{source}' declares shape {Describe(shape)} of {descr} ({dataBytes} bytes) but holds {Math.Max(0, length - headerEnd)} data bytes");
        return new NpyHeader(shape, descr, headerEnd);
    }

    private static int ElementSize(string descr, string source) => descr switch
    {
        "<f8" or "<i8" => 8,
        "<f4" or "<i4" => 4,
        "<f2" => 2,
        "|u1" or "|b1" => 1,
        _ => throw new ArgumentException($"'{source}' holds dtype {descr}; expected float16/32/64, int32/64, uint8 or bool"),
    };

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

    /// <summary>Receives float32 values read a chunk at a time (the span is reused afterwards).</summary>
    public delegate void FloatChunk(ReadOnlySpan<float> values);

    /// <summary>
    /// The first <paramref name="count"/> values of a floating array, <paramref name="stream"/> at its first value,
    /// widened or rounded to float32 and handed to <paramref name="chunk"/> a megabyte at a time.
    /// </summary>
    public static void ReadFloats(Stream stream, NpyHeader header, long count, string source, FloatChunk chunk)
    {
        if (!header.IsFloating) throw new ArgumentException($"'{source}' holds dtype {header.Descr}, not float16/32/64");
        if (count < 0 || count > header.ElementCount) throw new ArgumentException($"{count} values asked of '{source}', which holds {header.ElementCount}");
        int size = header.ElementSize;
        var bytes = new byte[(1 << 20) / size * size];
        var floats = new float[bytes.Length / size];
        for (long done = 0; done < count;)
        {
            int n = (int)Math.Min(floats.Length, count - done);
            if (ReadFully(stream, bytes.AsSpan(0, n * size)) != n * size) throw new ArgumentException($"'{source}' is truncated");
            ToSingle(bytes.AsSpan(0, n * size), size, floats);
            chunk(floats.AsSpan(0, n));
            done += n;
        }
    }

    /// <summary>Little-endian float16, float32 or float64 values (<paramref name="elementSize"/> 2, 4 or 8 bytes) widened or rounded to float32.</summary>
    public static void ToSingle(ReadOnlySpan<byte> values, int elementSize, Span<float> destination)
    {
        switch (elementSize)
        {
            case 4:
                MemoryMarshal.Cast<byte, float>(values).CopyTo(destination);
                break;
            case 8:
                var doubles = MemoryMarshal.Cast<byte, double>(values);
                for (int i = 0; i < doubles.Length; i++) destination[i] = (float)doubles[i];
                break;
            case 2:
                var halves = MemoryMarshal.Cast<byte, Half>(values);
                for (int i = 0; i < halves.Length; i++) destination[i] = (float)halves[i];
                break;
            default:
                throw new ArgumentException($"float elements are 2, 4 or 8 bytes, got {elementSize}", nameof(elementSize));
        }
    }

    private static T[] ReadValues<T>(Stream stream, long n, string source) where T : unmanaged
    {
        var values = new T[n];
        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        if (ReadFully(stream, bytes) != bytes.Length) throw new ArgumentException($"'{source}' is truncated");
        return values;
    }

    private static int ReadFully(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = stream.Read(buffer[total..]);
            if (read == 0) break;
            total += read;
        }
        return total;
    }

    /// <summary>The text of a header field: a quoted string, a word, or the tuple of 'shape'.</summary>
    private static string Field(string header, string key, string source)
    {
        int k = header.IndexOf($"'{key}'", StringComparison.Ordinal);
        if (k < 0) k = header.IndexOf($"\"{key}\"", StringComparison.Ordinal);
        if (k < 0) throw new ArgumentException($"'{source}' has no '{key}' in its header");
        int colon = header.IndexOf(':', k);
        if (colon < 0) throw new ArgumentException($"'{source}' has a malformed header near '{key}'");
        if (key == "shape")
        {
            int open = header.IndexOf('(', colon), close = open < 0 ? -1 : header.IndexOf(')', open);
            if (open < 0 || close < 0) throw new ArgumentException($"'{source}' has a malformed shape in its header (a tuple of integers is expected)");
            return header[(open + 1)..close];
        }
        int end = header.IndexOfAny([',', '}'], colon);
        if (end < 0) throw new ArgumentException($"'{source}' has a malformed header near '{key}'");
        return header[(colon + 1)..end];
    }

    private static long[] ParseShape(string text, string source)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            string p = parts[i].TrimEnd('L');
            if (!long.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]))
                throw new ArgumentException($"'{source}' has shape ({text.Trim()}) in its header; dimensions must be non-negative integers");
        }
        return shape;
    }

    private static string Describe(long[] shape) => "(" + string.Join(", ", shape) + ")";
}
