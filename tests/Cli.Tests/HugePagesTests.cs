using System.Runtime.InteropServices;
using OnnxSlim.Spectral.Numerics;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Cli.Tests;

/// <summary>
/// The command line advises its managed heap at start (<see cref="HugePages.AdviseManagedHeap"/>). Here, in this test
/// process, which runs the command line only as child processes and so has advised nothing of its own until now.
/// </summary>
public class HugePagesTests
{
    [Fact]
    public void TheManagedHeapAsksForHugePages()
    {
        long advised = HugePages.AdviseManagedHeap();
        if (!MemoryMappings.HugePagesAvailable)
        {
            Assert.Equal(0, advised);
            return;
        }
        // At least the GC's reservation, which is far larger than anything it has committed yet.
        Assert.True(advised >= 256L << 20, $"{advised} bytes advised");
        // A small object lives in a region no array of LargeArrays has advised: only the heap-wide advice covers it.
        var small = new byte[100];
        var handle = GCHandle.Alloc(small, GCHandleType.Pinned);
        string? flags = MemoryMappings.Flags(handle.AddrOfPinnedObject());
        handle.Free();
        Assert.NotNull(flags);
        Assert.Contains(" hg", flags);
    }
}
