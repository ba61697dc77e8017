namespace OnnxSlim.Calibration;

/// <summary>
/// How one batch-major activation is indexed by rows. Channel-major (N, C, spatial…): row n·A + p reads
/// channel c at (n·C + c)·A + p. Row-major (…, C): row r reads channel c at r·C + c. A is the rows per image.
/// </summary>
internal readonly record struct ActivationLayout(int Channels, int Area, bool ChannelMajor)
{
    /// <summary>Element index of channel <paramref name="c"/> in local row <paramref name="row"/> of a batch.</summary>
    public long Index(long row, int c)
    {
        if (!ChannelMajor) return row * Channels + c;
        long n = row / Area, p = row - n * Area;
        return (n * Channels + c) * Area + p;
    }

    /// <summary>Reads the chosen channels of one row.</summary>
    public void Gather(ReadOnlySpan<float> data, long row, ReadOnlySpan<int> channels, Span<float> destination)
    {
        if (ChannelMajor)
        {
            long n = row / Area, p = row - n * Area, plane = n * Channels;
            for (int i = 0; i < channels.Length; i++) destination[i] = data[(int)((plane + channels[i]) * Area + p)];
        }
        else
        {
            long start = row * Channels;
            for (int i = 0; i < channels.Length; i++) destination[i] = data[(int)(start + channels[i])];
        }
    }

    /// <summary>Reads every channel of one row.</summary>
    public void GatherAll(ReadOnlySpan<float> data, long row, Span<float> destination)
    {
        if (ChannelMajor)
        {
            long n = row / Area, p = row - n * Area, plane = n * Channels;
            for (int c = 0; c < Channels; c++) destination[c] = data[(int)((plane + c) * Area + p)];
        }
        else data.Slice((int)(row * Channels), Channels).CopyTo(destination);
    }
}
