using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>The rewrite's copy-saving slices give the bits of the copying ones.</summary>
public sealed class SliceInPlaceTests
{
    private static float[] Values(int n, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1))];
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Gathering_in_place_is_gathering_into_a_new_array(int axis)
    {
        long[] dims = [6, 5, 4];
        var data = Values(120, 1);
        int[] keep = axis switch { 0 => [0, 2, 5], 1 => [1, 2, 4], _ => [3] };
        long[] expectedDims = [.. dims], dimsInPlace = [.. dims];
        var expected = TensorSlicer.Gather(data, expectedDims, axis, keep);
        var copy = data.ToArray();
        int n = TensorSlicer.GatherInPlace(copy, dimsInPlace, axis, keep);
        Assert.Equal(expectedDims, dimsInPlace);
        Assert.Equal(expected, copy[..n]);
        Assert.Throws<ArgumentException>(() => TensorSlicer.GatherInPlace(data.ToArray(), [.. dims], axis, [1, 0]));
    }

    [Fact]
    public void Gathering_with_additions_is_adding_to_a_copy_then_gathering()
    {
        // [out 3, in 4 channels × 2 elements]: channels 1 and 3 removed, folded into the kept 0 and 2 (0 twice: order matters).
        long[] dims = [3, 8];
        var original = Values(24, 2);
        (long, long, long, double)[] additions = [(2, 0, 2, 0.3), (6, 4, 2, -1.7), (6, 0, 2, 0.11)];
        var copy = original.ToArray();
        TensorSlicer.AddScaledAll(copy, dims, 1, additions);
        long[] expectedDims = [.. dims], dimsAdded = [.. dims];
        int[] keep = [0, 1, 4, 5];
        var expected = TensorSlicer.Gather(copy, expectedDims, 1, keep);
        var cuts = new SortedDictionary<int, int[]> { [0] = [0, 1, 2], [1] = keep };
        var added = TensorSlicer.GatherAdded(Bytes(original), dimsAdded, cuts, [new AdditionRun(1, dims, additions)]);
        Assert.NotNull(added);
        Assert.Equal(expectedDims, dimsAdded);
        Assert.Equal(expected, added);
        Assert.NotEqual(TensorSlicer.Gather(original, [.. dims], 1, keep), added);
        // An addition that reads a kept element, or one along an axis that is not cut, takes the copy's way.
        Assert.Null(TensorSlicer.GatherAdded(Bytes(original), [.. dims], cuts, [new AdditionRun(1, dims, [(0, 4, 2, 0.5)])]));
        Assert.Null(TensorSlicer.GatherAdded(Bytes(original), [.. dims], cuts, [new AdditionRun(0, dims, [(1, 0, 1, 0.5)])]));
    }

    private static byte[] Bytes(float[] values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    [Fact]
    public void Gathering_with_additions_on_both_cores_is_the_bits_of_the_scalar_loop()
    {
        // [out 300, in 40 channels × 49]: large enough to split between cores; 8 removed channels folded into kept ones.
        long[] dims = [300, 40 * 49];
        var original = Values(300 * 40 * 49, 4);
        var removed = new[] { 1, 5, 6, 7, 20, 33, 38, 39 };
        int[] keepChannels = [.. Enumerable.Range(0, 40).Where(c => !removed.Contains(c))];
        var random = new Random(5);
        var additions = removed.SelectMany(r => Enumerable.Range(0, 3).Select(t =>
            ((long)r * 49, (long)keepChannels[random.Next(keepChannels.Length)] * 49, 49L, random.NextDouble() * 4 - 2))).ToArray();
        var copy = original.ToArray();
        foreach (var (from, to, count, ratio) in additions)
            for (int o = 0; o < 300; o++)
                for (long e = 0; e < count; e++)
                    copy[o * 1960 + to + e] = (float)(copy[o * 1960 + to + e] + ratio * copy[o * 1960 + from + e]);
        int[] keep = [.. keepChannels.SelectMany(c => Enumerable.Range(c * 49, 49))];
        var expected = TensorSlicer.Gather(copy, [.. dims], 1, keep);
        long[] dimsAdded = [.. dims];
        var added = TensorSlicer.GatherAdded(Bytes(original), dimsAdded, new SortedDictionary<int, int[]> { [1] = keep }, [new AdditionRun(1, dims, additions)]);
        Assert.NotNull(added);
        Assert.Equal(keep.Length, dimsAdded[1]);
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), added.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Vector_additions_are_the_bits_of_the_scalar_loop()
    {
        var random = new Random(6);
        foreach (int n in new[] { 0, 1, 7, 8, 15, 16, 17, 49, 100, 1000 })
        {
            var source = Values(n, 10 + n);
            var target = Values(n, 20 + n).Select(v => v * 1e3f).ToArray();
            double ratio = random.NextDouble() * 1e-3 - 5e-4;
            var expected = target.ToArray();
            for (int e = 0; e < n; e++) expected[e] = (float)(expected[e] + ratio * source[e]);
            TensorSlicer.AddScaled(target, source, ratio);
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), target.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void A_tensor_that_takes_its_floats_over_reads_and_writes_as_one_that_copied_them()
    {
        var values = Values(10, 3);
        var copied = Tensor.FromFloats("w", [2, 3], values.AsSpan(0, 6));
        var taken = Tensor.FromFloats("w", [10], values);
        taken.TakeFloats([2, 3], values.ToArray(), 6);
        Assert.Equal(copied.ToFloats(), taken.ToFloats());
        Assert.Equal(copied.Proto.RawData.ToByteArray(), taken.Proto.RawData.ToByteArray());
        Assert.Equal(copied.Dims, taken.Dims);
        Assert.Throws<ArgumentException>(() => taken.TakeFloats([2, 3], values, 5));
    }
}
