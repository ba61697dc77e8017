namespace OnnxSlim.Calibration.Tests;

public sealed class ActivationLayoutTests
{
    /// <summary>Several rows at once read what row by row reads, for both layouts, rows across images and past an offset.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rows_read_together_are_the_rows_read_one_by_one(bool channelMajor)
    {
        var layout = new ActivationLayout(Channels: 5, Area: 12, ChannelMajor: channelMajor);
        var data = Enumerable.Range(0, 3 * 5 * 12).Select(i => i * 0.5f - 7).ToArray();
        long first = 12; // the batch starts at the second image
        long[] rows = [12, 13, 20, 23, 24, 30, 35, 47];
        var together = new float[rows.Length * 5];
        layout.GatherAll(data, rows, first, together);
        var oneByOne = new float[rows.Length * 5];
        for (int i = 0; i < rows.Length; i++) layout.GatherAll(data, rows[i] - first, oneByOne.AsSpan(i * 5, 5));
        Assert.Equal(oneByOne, together);
        Assert.Equal(data[(int)layout.Index(rows[3] - first, 2)], together[3 * 5 + 2]);
    }
}
