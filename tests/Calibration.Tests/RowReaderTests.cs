namespace OnnxSlim.Calibration.Tests;

public sealed class RowReaderTests
{
    /// <summary>Channels [first, first+count) of each sampled row, feature-major, for both layouts and rows across images.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Channels_of_sampled_rows_are_read_feature_major(bool channelMajor)
    {
        var layout = new ActivationLayout(Channels: 6, Area: 10, ChannelMajor: channelMajor);
        var x = Enumerable.Range(0, 3 * 6 * 10).Select(i => i * 0.25f - 3).ToArray();
        long[] rows = [1, 4, 9, 10, 17, 25, 29];
        const int first = 2, count = 3, stride = 8;
        var dst = Enumerable.Repeat(double.NaN, count * stride).ToArray();
        RowReader.Channels(x, layout, first, count, rows, dst, stride);
        for (int c = 0; c < count; c++)
            for (int r = 0; r < rows.Length; r++) Assert.Equal(x[(int)layout.Index(rows[r], first + c)], dst[c * stride + r]);
        Assert.True(double.IsNaN(dst[stride - 1]), "wrote past the rows");
    }

    /// <summary>Rows read straight into float32 (the products' copy) are the float64 rows narrowed: the activations are float32.</summary>
    [Fact]
    public void Float32_rows_are_the_float64_rows_narrowed()
    {
        var input = new ActivationLayout(Channels: 3, Area: 5 * 7, ChannelMajor: true);
        var x = Enumerable.Range(0, 2 * 3 * 5 * 7).Select(i => MathF.Sin(i * 0.7f) * 1e3f + 1e-4f * i).ToArray();
        long[] rows = [0, 3, 6, 11, 20, 34, 35, 48, 69];
        const int stride = 16;
        var geometry = new ConvGeometry(InH: 5, InW: 7, KernelH: 3, KernelW: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1, PadTop: 1, PadLeft: 1, OutH: 5, OutW: 7);
        int features = 3 * geometry.KernelArea;
        var wide = new double[features * stride];
        var narrow = new float[features * stride];
        RowReader.ConvPatches(x, input, geometry, 0, 3, rows, wide, stride);
        RowReader.ConvPatches(x, input, geometry, 0, 3, rows, narrow, stride);
        for (int i = 0; i < wide.Length; i++) Assert.Equal((float)wide[i], narrow[i]);
        Assert.Contains(narrow, v => v == 0); // some taps fall in the padding
        var wideChannels = new double[3 * stride];
        var narrowChannels = new float[3 * stride];
        RowReader.Channels(x, input, 0, 3, rows, wideChannels, stride);
        RowReader.Channels(x, input, 0, 3, rows, narrowChannels, stride);
        for (int i = 0; i < wideChannels.Length; i++) Assert.Equal((float)wideChannels[i], narrowChannels[i]);
    }

    /// <summary>The skip operand is read at each row's entry for the output (the per-entry index), for both layouts and a space-to-depth block.</summary>
    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 1)]
    [InlineData(true, 2)]
    public void Skip_is_subtracted_at_each_rows_entry(bool channelMajor, int block)
    {
        var layout = block > 1 ? new ActivationLayout(Channels: 8, Area: 6, ChannelMajor: true, Block: 2, Width: 3)
            : new ActivationLayout(Channels: 6, Area: 10, ChannelMajor: channelMajor);
        var skip = Enumerable.Range(0, 3 * 6 * 10).Select(i => i * 0.5f - 7).ToArray();
        long[] rows = [0, 3, 5, 7, 11, 13];
        const int first = 1, count = 4, stride = 8;
        double[] inverse = [0.5, 2, 0, -1.5, 3];
        var dst = Enumerable.Range(0, count * stride).Select(i => i * 0.125).ToArray();
        var expected = (double[])dst.Clone();
        for (int t = 0; t < count; t++)
            for (int r = 0; r < rows.Length; r++)
                if (inverse[first + t] != 0) expected[t * stride + r] -= inverse[first + t] * skip[(int)layout.Index(rows[r], first + t)];
        RowReader.SubtractSkip(skip, layout, rows, first, count, inverse, dst, stride);
        Assert.Equal(expected, dst);
    }

    /// <summary>Stored target rows (row-major) come out feature-major, for a row count that is not a multiple of the row blocks.</summary>
    [Fact]
    public void Targets_are_transposed_into_the_chunk()
    {
        const int m = 7, stored = 30, rowStart = 3, rows = 19, first = 2, count = 4, stride = 24;
        var targets = Enumerable.Range(0, stored * m).Select(i => i * 0.25f).ToArray();
        var dst = Enumerable.Repeat(double.NaN, count * stride).ToArray();
        RowReader.Targets(targets, m, rowStart, rows, first, count, dst, stride);
        for (int t = 0; t < count; t++)
            for (int r = 0; r < rows; r++) Assert.Equal(targets[(rowStart + r) * m + first + t], dst[t * stride + r]);
        Assert.True(double.IsNaN(dst[rows]), "wrote past the rows");
    }
}
