namespace OnnxSlim.Calibration;

/// <summary>
/// How one batch-major activation is indexed by rows. Channel-major (N, C, spatial…): row n·A + p reads
/// channel c at (n·C + c)·A + p. Row-major (…, C): row r reads channel c at r·C + c. A is the rows per image.
/// With <paramref name="Block"/> k > 1 (a 2-D channel-major map of C/k² channels, H·k × W·k, read as
/// space-to-depth): row (n, y, x) of the H×W grid (W = <paramref name="Width"/>) reads channel c = o·k² + i·k + j
/// at pixel (y·k + i, x·k + j) of channel o.
/// </summary>
internal readonly record struct ActivationLayout(int Channels, int Area, bool ChannelMajor, int Block = 1, int Width = 0)
{
    /// <summary>Element index of channel <paramref name="c"/> in local row <paramref name="row"/> of a batch.</summary>
    public long Index(long row, int c)
    {
        if (Block > 1) return BlockIndex(row, c);
        if (!ChannelMajor) return row * Channels + c;
        long n = row / Area, p = row - n * Area;
        return (n * Channels + c) * Area + p;
    }

    /// <summary>
    /// Each row's <see cref="Index"/> at channel 0 into <paramref name="starts"/>, and the step from one channel to the next
    /// (Index(row, c) = start + c·step), or 0 where the index is not linear in the channel (a space-to-depth block).
    /// </summary>
    public long ChannelStarts(ReadOnlySpan<long> rows, Span<long> starts)
    {
        if (Block > 1) return 0;
        for (int r = 0; r < rows.Length; r++) starts[r] = Index(rows[r], 0);
        return ChannelMajor ? Area : 1;
    }

    private long BlockIndex(long row, int c)
    {
        int kk = Block * Block;
        long n = row / Area, p = row - n * Area, y = p / Width, x = p - y * Width;
        int o = c / kk, t = c - o * kk, i = t / Block, j = t - i * Block;
        long height = Area / Width * Block, width = (long)Width * Block;
        return ((n * (Channels / kk) + o) * height + y * Block + i) * width + x * Block + j;
    }

    /// <summary>Reads the chosen channels of one row.</summary>
    public void Gather(ReadOnlySpan<float> data, long row, ReadOnlySpan<int> channels, Span<float> destination)
    {
        if (Block > 1)
            for (int i = 0; i < channels.Length; i++) destination[i] = data[(int)BlockIndex(row, channels[i])];
        else if (ChannelMajor)
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

    /// <summary>
    /// Reads every channel of several rows (offsets into <paramref name="data"/>'s rows, after subtracting
    /// <paramref name="first"/>) into <paramref name="destination"/>, row-major. Channel-major data is read a block of
    /// <see cref="ChannelBlock"/> channels at a time, row after row: row by row over all channels every value lay in
    /// another plane (a cache miss each on large maps), and channel by channel the writes were a row apart (8 KiB for
    /// 2,048 channels, every one in the same cache set: ResNet-50's recording spent ~4 CPU s here).
    /// </summary>
    public void GatherAll(ReadOnlySpan<float> data, ReadOnlySpan<long> rows, long first, Span<float> destination)
    {
        if (!ChannelMajor || Block > 1)
        {
            for (int i = 0; i < rows.Length; i++) GatherAll(data, rows[i] - first, destination.Slice(i * Channels, Channels));
            return;
        }
        int count = rows.Length;
        Span<long> starts = count <= 1024 ? stackalloc long[count] : new long[count];
        for (int i = 0; i < count; i++)
        {
            long row = rows[i] - first, n = row / Area;
            starts[i] = n * Channels * Area + (row - n * Area);
        }
        for (int c0 = 0; c0 < Channels; c0 += ChannelBlock)
        {
            int c1 = Math.Min(Channels, c0 + ChannelBlock);
            for (int i = 0; i < count; i++)
            {
                var d = destination.Slice(i * Channels, Channels);
                long at = starts[i] + (long)c0 * Area;
                for (int c = c0; c < c1; c++, at += Area) d[c] = data[(int)at];
            }
        }
    }

    /// <summary>Channels <see cref="GatherAll(ReadOnlySpan{float}, ReadOnlySpan{long}, long, Span{float})"/> reads per pass over the rows: one cache line of each row's destination.</summary>
    private const int ChannelBlock = 16;

    /// <summary>Reads every channel of one row.</summary>
    public void GatherAll(ReadOnlySpan<float> data, long row, Span<float> destination)
    {
        if (Block > 1)
            for (int c = 0; c < Channels; c++) destination[c] = data[(int)BlockIndex(row, c)];
        else if (ChannelMajor)
        {
            long n = row / Area, p = row - n * Area, plane = n * Channels;
            for (int c = 0; c < Channels; c++) destination[c] = data[(int)((plane + c) * Area + p)];
        }
        else data.Slice((int)(row * Channels), Channels).CopyTo(destination);
    }
}
