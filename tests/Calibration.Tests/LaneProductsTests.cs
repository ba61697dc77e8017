using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

public sealed class LaneProductsTests
{
    /// <summary>
    /// Several regressions summed a lane each give the sums each one's own <see cref="NormalEquations.Add"/> gives, bit
    /// for bit: chunks past a panel boundary (300 and 512 rows), widths that are not a multiple of the 4×4 blocks, and a
    /// partial lane block.
    /// </summary>
    [Theory]
    [InlineData(26, 1, 8)]
    [InlineData(26, 1, 4)]
    [InlineData(10, 3, 3)]
    [InlineData(5, 2, 1)]
    public void Lanes_give_the_sums_of_the_equations_added_one_by_one(int n, int m, int groups)
    {
        const int stride = 512;
        groups = Math.Min(groups, LaneProducts.Lanes);
        var rng = new Random(n * 31 + m);
        var one = Enumerable.Range(0, groups).Select(_ => new NormalEquations(n, m)).ToArray();
        var lanes = Enumerable.Range(0, groups).Select(_ => new NormalEquations(n, m)).ToArray();
        var z = new double[(n + m) * stride * LaneProducts.Lanes];
        foreach (int count in new[] { 300, 512, 17 })
        {
            for (int g = 0; g < groups; g++)
            {
                var x = StandardNormal.Vector(rng, n * stride);
                var y = StandardNormal.Vector(rng, m * stride);
                one[g].Add(x, y, count, stride);
                lanes[g].AddTargets(y, count, stride);
                LaneProducts.Load(z, g, x, n, y, m, count, stride);
            }
            LaneProducts.Add(lanes, z, count, stride);
        }
        for (int g = 0; g < groups; g++)
        {
            Assert.Equal(one[g].Rows, lanes[g].Rows);
            Assert.Equal(one[g].Gram, lanes[g].Gram);
            Assert.Equal(one[g].Cross, lanes[g].Cross);
            Assert.Equal(one[g].TargetSquares, lanes[g].TargetSquares);
        }
        Assert.NotEqual(0, lanes[0].Gram[1]);
    }

    [Fact]
    public void Equations_of_other_sizes_or_too_many_are_refused()
    {
        var z = new double[8 * 16 * LaneProducts.Lanes];
        Assert.Throws<ArgumentException>(() => LaneProducts.Add([new NormalEquations(3, 1), new NormalEquations(4, 1)], z, 16, 16));
        Assert.Throws<ArgumentException>(() => LaneProducts.Add([.. Enumerable.Range(0, LaneProducts.Lanes + 1).Select(_ => new NormalEquations(3, 1))], z, 16, 16));
        Assert.Throws<ArgumentException>(() => LaneProducts.Load(z, LaneProducts.Lanes, new double[48], 3, new double[16], 1, 16, 16));
    }
}

public sealed class ConvPatchesLanesTests
{
    /// <summary>Patches of several groups written straight into the lane layout are each group's own patches, interleaved (padding, stride, two images).</summary>
    [Theory]
    [InlineData(1, 5)]
    [InlineData(2, 3)]
    public void Lane_patches_are_the_groups_patches_interleaved(int channelsPerGroup, int groups)
    {
        groups = Math.Min(groups, LaneProducts.Lanes);
        const int channels = 12, inH = 7, inW = 9, stride = 40;
        var geometry = new ConvGeometry(inH, inW, 3, 3, 2, 2, 1, 1, 1, 1, 4, 5);
        var input = new ActivationLayout(channels, inH * inW, ChannelMajor: true);
        var rng = new Random(channelsPerGroup);
        var x = Enumerable.Range(0, 2 * channels * inH * inW).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        long[] rows = [0, 3, 4, 9, 19, 20, 27, 39];
        var patches = new PatchRows(rows.Length);
        patches.Set(rows, geometry, input);
        int features = channelsPerGroup * 9, firstGroup = 6 / channelsPerGroup - 1;
        var z = new double[features * stride * LaneProducts.Lanes];
        RowReader.ConvPatchesLanes(x, input, geometry, firstGroup, channelsPerGroup, groups, patches, z, stride, LaneProducts.Lanes);
        var expected = new double[features * stride * LaneProducts.Lanes];
        for (int l = 0; l < groups; l++)
        {
            var own = new double[features * stride];
            RowReader.ConvPatches(x, input, geometry, (firstGroup + l) * channelsPerGroup, channelsPerGroup, rows, own, stride);
            LaneProducts.Load(expected, l, own, features, [], 0, rows.Length, stride);
        }
        Assert.Equal(expected, z);
        Assert.Contains(z, v => v == 0); // some taps fall in the padding
        Assert.Contains(z, v => v != 0);
    }
}
