using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnnxSlim.Calibration;

/// <summary>
/// A temporary file of float32 values addressed by element offset, for data that must outlive a pass but
/// would not fit in memory for every sample (cached activations, sampled targets). What is read back
/// recently sits in the OS page cache, which the kernel reclaims under pressure and does not count as
/// this process's memory. The file is gone when disposed, and also if the process dies (<see cref="TemporaryFile"/>).
/// </summary>
internal sealed class SpillFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly string _what;

    /// <param name="purpose">One word for the file's name.</param>
    /// <param name="what">What the file holds, as an error names it ("the pruned model's cached activations").</param>
    public SpillFile(string purpose, string what)
    {
        _handle = TemporaryFile.Create(purpose, ".f32");
        _what = what;
    }

    /// <summary>Writes <paramref name="values"/> starting at element <paramref name="offset"/> (the file grows as needed).</summary>
    public void Write(long offset, ReadOnlySpan<float> values)
    {
        var bytes = MemoryMarshal.AsBytes(values);
        long at = offset * sizeof(float);
        // RandomAccess.Write writes everything or throws; large spans go in one call.
        try { RandomAccess.Write(_handle, bytes, at); }
        catch (IOException e) { throw TemporaryFile.Explain(e, _what); }
    }

    /// <summary>Fills <paramref name="destination"/> from element <paramref name="offset"/>; the range must have been written.</summary>
    public void Read(long offset, Span<float> destination)
    {
        var bytes = MemoryMarshal.AsBytes(destination);
        long at = offset * sizeof(float);
        while (bytes.Length > 0)
        {
            int read = RandomAccess.Read(_handle, bytes, at);
            if (read <= 0) throw new IOException($"temporary file ended {bytes.Length} bytes early at byte {at}");
            bytes = bytes[read..];
            at += read;
        }
    }

    public void Dispose() => _handle.Dispose();
}
