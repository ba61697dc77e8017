namespace OnnxSlim.Calibration;

/// <summary>
/// Where the patches of a chunk of a Conv's sampled rows start in its input: each row's image (the offset of its
/// first channel plane) and its top-left input position, which may lie in the padding. Worked out once per chunk
/// and shared by every group that reads the chunk (a depthwise conv has hundreds).
/// </summary>
internal sealed class PatchRows(int capacity)
{
    private readonly long[] _planes = new long[capacity];
    private readonly int[] _tops = new int[capacity];
    private readonly int[] _lefts = new int[capacity];

    public int Count { get; private set; }
    public ReadOnlySpan<long> Planes => _planes.AsSpan(0, Count);
    public ReadOnlySpan<int> Tops => _tops.AsSpan(0, Count);
    public ReadOnlySpan<int> Lefts => _lefts.AsSpan(0, Count);

    /// <summary>Fills in <paramref name="rows"/> (output positions n·OutArea + oh·OutW + ow, relative to the batch).</summary>
    public void Set(ReadOnlySpan<long> rows, in ConvGeometry g, ActivationLayout input)
    {
        if (rows.Length > _planes.Length) throw new ArgumentException($"{rows.Length} rows do not fit in {_planes.Length}");
        for (int r = 0; r < rows.Length; r++)
        {
            long n = rows[r] / g.OutArea;
            int p = (int)(rows[r] - n * g.OutArea);
            int oh = p / g.OutW, ow = p - oh * g.OutW;
            _planes[r] = n * input.Channels * input.Area;
            _tops[r] = oh * g.StrideH - g.PadTop;
            _lefts[r] = ow * g.StrideW - g.PadLeft;
        }
        Count = rows.Length;
    }
}
