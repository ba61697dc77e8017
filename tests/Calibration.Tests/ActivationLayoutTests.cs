namespace OnnxSlim.Calibration.Tests;

public sealed class ActivationLayoutTests
{
    /// <summary>
    /// Several rows at once read what row by row reads, for both layouts, rows across images and past an offset, and
    /// channels past one block of the channel-major reads (37 = two blocks of 16 and a partial one).
    /// </summary>
    [Theory]
    [InlineData(true, 5)]
    [InlineData(false, 5)]
    [InlineData(true, 37)]
    public void Rows_read_together_are_the_rows_read_one_by_one(bool channelMajor, int channels)
    {
        var layout = new ActivationLayout(Channels: channels, Area: 12, ChannelMajor: channelMajor);
        var data = Enumerable.Range(0, 3 * channels * 12).Select(i => i * 0.5f - 7).ToArray();
        long first = 12; // the batch starts at the second image
        long[] rows = [12, 13, 20, 23, 24, 30, 35, 47];
        var together = new float[rows.Length * channels];
        layout.GatherAll(data, rows, first, together);
        var oneByOne = new float[rows.Length * channels];
        for (int i = 0; i < rows.Length; i++) layout.GatherAll(data, rows[i] - first, oneByOne.AsSpan(i * channels, channels));
        Assert.Equal(oneByOne, together);
        Assert.Equal(data[(int)layout.Index(rows[3] - first, 2)], together[3 * channels + 2]);
        Assert.Equal(data[(int)layout.Index(rows[5] - first, channels - 1)], together[5 * channels + channels - 1]);
    }
}
