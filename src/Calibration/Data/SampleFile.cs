using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// Little-endian float values stored in a file (a .npy's body, or decoded images spilled to a temporary file) and read
/// at an offset on demand, so that a calibration set costs one batch of memory however many samples it holds.
/// Positional reads share no file position: passes may read from several threads.
/// </summary>
internal sealed class SampleFile : IDisposable
{
    private const int ChunkBytes = 1 << 20;

    private readonly SafeFileHandle _handle;
    private readonly long _dataOffset;
    private readonly int _elementSize;
    private long _written;

    private SampleFile(SafeFileHandle handle, long dataOffset, int elementSize)
    {
        _handle = handle;
        _dataOffset = dataOffset;
        _elementSize = elementSize;
    }

    /// <summary>Float16, float32 or float64 values of <paramref name="path"/> from byte <paramref name="dataOffset"/> on.</summary>
    public static SampleFile Open(string path, long dataOffset, int elementSize)
    {
        if (elementSize is not (2 or 4 or 8)) throw new ArgumentException($"float elements are 2, 4 or 8 bytes, got {elementSize}", nameof(elementSize));
        return new SampleFile(File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read), dataOffset, elementSize);
    }

    /// <summary>
    /// An empty float32 file in the temporary folder, written with <see cref="Append"/>, that nothing outlives: not a
    /// failed run, nor (on Unix) a killed process (<see cref="TemporaryFile"/>).
    /// </summary>
    public static SampleFile CreateTemporary() => new(TemporaryFile.Create("samples", ".bin"), 0, sizeof(float));

    /// <summary>Appends float32 values (a temporary file only).</summary>
    public void Append(ReadOnlySpan<float> values)
    {
        if (_elementSize != sizeof(float)) throw new InvalidOperationException("only a float32 sample file can be appended to");
        try { RandomAccess.Write(_handle, MemoryMarshal.AsBytes(values), _written); }
        catch (IOException e) { throw TemporaryFile.Explain(e, "the calibration samples"); }
        _written += (long)values.Length * sizeof(float);
    }

    /// <summary>Values [<paramref name="element"/>, + destination.Length) widened (or rounded, float64) to float32.</summary>
    public void Read(long element, Span<float> destination)
    {
        long offset = _dataOffset + element * _elementSize;
        if (_elementSize == sizeof(float))
        {
            ReadExactly(MemoryMarshal.AsBytes(destination), offset);
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            int perChunk = ChunkBytes / _elementSize;
            for (int at = 0; at < destination.Length; at += perChunk)
            {
                int n = Math.Min(perChunk, destination.Length - at);
                var bytes = buffer.AsSpan(0, n * _elementSize);
                ReadExactly(bytes, offset + (long)at * _elementSize);
                NpyFile.ToSingle(bytes, _elementSize, destination.Slice(at, n));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void ReadExactly(Span<byte> destination, long offset)
    {
        for (int done = 0; done < destination.Length;)
        {
            int read = RandomAccess.Read(_handle, destination[done..], offset + done);
            if (read == 0) throw new IOException($"calibration data ended early: {destination.Length - done} bytes missing at offset {offset + done}");
            done += read;
        }
    }

    public void Dispose() => _handle.Dispose();
}
