using System.Runtime.InteropServices;
using OnnxSlim.Spectral.Numerics;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Spectral.Tests;

public class LargeArraysTests
{
    private static readonly long Large = LargeArrays.MinBytes / sizeof(double) + 12_345;

    [Fact]
    public void LargeArraysAreZeroedEvenWhereTheMemoryWasUsedBefore()
    {
        // Arrays that die leave their memory to the next ones (allocated uninitialised): it must not show through.
        for (int round = 0; round < 4; round++)
        {
            var a = LargeArrays.Zeroed<double>(Large);
            Assert.Equal(Large, a.LongLength);
            Assert.True(a.AsSpan().IndexOfAnyExcept(0.0) < 0, $"round {round}: a value left over");
            a.AsSpan().Fill(double.NaN);
            GC.KeepAlive(a);
            a = null;
            GC.Collect();
        }
    }

    [Fact]
    public void SmallArraysArePlainZeroedArrays()
    {
        var a = LargeArrays.Zeroed<float>(1000);
        Assert.Equal(1000, a.Length);
        Assert.All(a, v => Assert.Equal(0f, v));
        Assert.Empty(LargeArrays.Zeroed<int>(0));
        Assert.Throws<ArgumentException>(() => LargeArrays.Zeroed<int>(-1));
    }

    [Fact]
    public void OnLinuxALargeArrayAsksForHugePages()
    {
        var a = LargeArrays.Zeroed<double>(Large);
        Assert.Equal(Large, a.LongLength);
        if (!MemoryMappings.HugePagesAvailable) return;
        var handle = GCHandle.Alloc(a, GCHandleType.Pinned);
        // The mapping that holds the array's middle: its VmFlags carry "hg" once madvise(MADV_HUGEPAGE) covered it.
        string? flags = MemoryMappings.Flags(handle.AddrOfPinnedObject() + Large * sizeof(double) / 2);
        handle.Free();
        Assert.NotNull(flags);
        Assert.Contains(" hg", flags);
    }
}
