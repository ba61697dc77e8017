using System.IO.Compression;
using System.IO.Hashing;

namespace OnnxSlim.Runtime;

/// <summary>
/// A NumPy .npz archive (one .npy member per array, stored or deflated), read a member at a time: whole
/// (<see cref="Read"/>) or as float32 chunks (<see cref="ReadFloats"/>), so an archive larger than memory can be copied
/// out. A bad archive or member is an <see cref="ArgumentException"/> naming it, and so is a member whose bytes do not
/// match its CRC-32 once read to the end (System.IO.Compression does not check it: damaged values would be used).
/// </summary>
public sealed class NpzArchive : IDisposable
{
    private readonly string _path;
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _members;

    private NpzArchive(string path, ZipArchive zip, Dictionary<string, ZipArchiveEntry> members)
    {
        _path = path;
        _zip = zip;
        _members = members;
    }

    public static NpzArchive Open(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"data file not found: {path}");
        ZipArchive? zip = null;
        try
        {
            zip = ZipFile.OpenRead(path);
            var members = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries) // the central directory is read here, and may be damaged
                if (entry.FullName.EndsWith(".npy", StringComparison.Ordinal)) members[entry.FullName[..^4]] = entry;
            if (members.Count == 0) throw new ArgumentException($"'{path}' holds no .npy array");
            return new NpzArchive(path, zip, members);
        }
        catch (InvalidDataException e)
        {
            zip?.Dispose();
            throw Unreadable(path, e);
        }
        catch
        {
            zip?.Dispose();
            throw;
        }
    }

    /// <summary>The arrays' names (member names without .npy), in archive order.</summary>
    public IReadOnlyCollection<string> Names => _members.Keys;

    public bool Contains(string name) => _members.ContainsKey(name);

    public NpyFile.NpyArray Read(string name) => Use(name, (stream, source, length) => (NpyFile.Read(stream, source, length), true));

    public NpyFile.NpyHeader ReadHeader(string name) => Use(name, (stream, source, length) => (NpyFile.ReadHeader(stream, source, length), false));

    /// <summary>The first <paramref name="count"/> values of a floating array, as float32, handed over a chunk at a time.</summary>
    public void ReadFloats(string name, long count, NpyFile.FloatChunk chunk) =>
        Use(name, (stream, source, length) =>
        {
            var header = NpyFile.ReadHeader(stream, source, length);
            NpyFile.ReadFloats(stream, header, count, source, chunk);
            return (0, count == header.ElementCount);
        });

    /// <param name="read">Reads the member; says whether it read all of its values (then its CRC-32 is checked).</param>
    private T Use<T>(string name, Func<Stream, string, long, (T Result, bool Whole)> read)
    {
        if (!_members.TryGetValue(name, out var entry)) throw new ArgumentException($"'{_path}' has no array named '{name}'");
        string source = $"{_path}:{entry.FullName}";
        try
        {
            using var stream = new HashingStream(entry.Open());
            var (result, whole) = read(stream, source, entry.Length);
            if (whole)
            {
                stream.CopyTo(Stream.Null);
                if (stream.Crc32 != entry.Crc32) throw new ArgumentException($"'{source}' is damaged: its bytes do not match the archive's CRC-32");
            }
            return result;
        }
        catch (InvalidDataException e) { throw Unreadable(_path, e); }
    }

    /// <summary>A read-only stream that hashes what passes through it.</summary>
    private sealed class HashingStream(Stream inner) : Stream
    {
        private readonly Crc32 _crc = new();

        public uint Crc32 => _crc.GetCurrentHashAsUInt32();

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            _crc.Append(buffer[..n]);
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }

    private static ArgumentException Unreadable(string path, InvalidDataException e) =>
        new($"'{path}' is not a readable .npz archive ({e.Message.Split('\n')[0]})", e);

    public void Dispose() => _zip.Dispose();
}
