using System.Buffers;
using System.Runtime.InteropServices;

namespace OnnxSlim.GraphIO;

/// <summary>
/// A float array's memory seen as its little-endian bytes, so a tensor can take over a float array as its raw data
/// without a copy (see <see cref="Tensor.TakeFloats"/>). Why: VGG-16's sliced first classifier layer is 295 MB, and a
/// copy of it was alive beside the array during the rewrite's peak.
/// </summary>
/// <param name="count">How many of the values, from the first (a slice compacted in place leaves a longer array).</param>
internal sealed class FloatArrayBytes(float[] values, int count) : MemoryManager<byte>
{
    public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(values.AsSpan(0, count));

    public override unsafe MemoryHandle Pin(int elementIndex = 0)
    {
        if ((uint)elementIndex > (uint)count * sizeof(float))
            throw new ArgumentException($"byte {elementIndex} is outside the {count * sizeof(float)} bytes", nameof(elementIndex));
        var handle = GCHandle.Alloc(values, GCHandleType.Pinned);
        return new MemoryHandle((byte*)handle.AddrOfPinnedObject() + elementIndex, handle);
    }

    public override void Unpin()
    {
        // The handle Pin returned frees itself when disposed.
    }

    protected override void Dispose(bool disposing)
    {
        // Nothing native: the array is the GC's.
    }
}
