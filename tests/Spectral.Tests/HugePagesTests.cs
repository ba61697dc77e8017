using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

/// <summary>
/// The reading of <c>/proc/self/maps</c> behind <see cref="HugePages.AdviseManagedHeap"/> (the advice itself is tested in
/// the command line's tests, whose process advises nothing else: here it would also cover the arrays LargeArraysTests checks).
/// </summary>
public class HugePagesTests
{
    [Theory]
    [InlineData("7f53d5d01000-7f5f98000000 ---p 00000000 00:00 0 ", 0x7f53d5d01000L, 0x7f5f98000000L, true)]
    [InlineData("7f53b705d000-7f53b785d000 rw-p 00000000 00:00 0", 0x7f53b705d000L, 0x7f53b785d000L, true)]
    [InlineData("7f53aa000000-7f53aa021000 rw-p 00000000 00:00 0                          [anon:.NET GC]", 0x7f53aa000000L, 0x7f53aa021000L, true)]
    [InlineData("55ad31a19000-55ad3a000000 rw-p 00000000 00:00 0                          [heap]", 0x55ad31a19000L, 0x55ad3a000000L, false)]
    [InlineData("7ffd1c5e6000-7ffd1c607000 rw-p 00000000 00:00 0                          [stack]", 0x7ffd1c5e6000L, 0x7ffd1c607000L, false)]
    [InlineData("7f53b6a00000-7f53b6ab1000 r--p 00000000 fe:00 351013   /usr/share/dotnet/libclrjit.so", 0x7f53b6a00000L, 0x7f53b6ab1000L, false)]
    public void ReadsAMappingLine(string line, long start, long end, bool anonymous)
    {
        var mapping = HugePages.Mapping(line);
        Assert.NotNull(mapping);
        Assert.Equal((start, end, anonymous), mapping.Value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("7f53-zz rw-p 00000000 00:00 0")]
    [InlineData("7f53b6a00000-7f53b6ab1000 r--p")]
    [InlineData("7f53b6ab1000-7f53b6a00000 rw-p 00000000 00:00 0")]
    [InlineData("ffffffffffffffffffff-1 rw-p 00000000 00:00 0")]
    public void ALineOfAnotherFormIsNoMapping(string line) => Assert.Null(HugePages.Mapping(line));
}
