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
        var added = TensorSlicer.GatherAdded(original, dimsAdded, cuts, [new AdditionRun(1, dims, additions)]);
        Assert.NotNull(added);
        Assert.Equal(expectedDims, dimsAdded);
        Assert.Equal(expected, added);
        Assert.NotEqual(TensorSlicer.Gather(original, [.. dims], 1, keep), added);
        // An addition that reads a kept element, or one along an axis that is not cut, takes the copy's way.
        Assert.Null(TensorSlicer.GatherAdded(original, [.. dims], cuts, [new AdditionRun(1, dims, [(0, 4, 2, 0.5)])]));
        Assert.Null(TensorSlicer.GatherAdded(original, [.. dims], cuts, [new AdditionRun(0, dims, [(1, 0, 1, 0.5)])]));
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
