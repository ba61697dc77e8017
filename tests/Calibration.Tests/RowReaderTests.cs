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
}
