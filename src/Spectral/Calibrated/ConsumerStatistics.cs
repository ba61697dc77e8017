namespace OnnxSlim.Spectral;

/// <summary>
/// One layer reading a group's channels, as calibration data sees it. <paramref name="Moments"/>: E[x·xᵀ]
/// of the group's channels at that layer's input (Width×Width, row-major, group channel order).
/// <paramref name="Weights"/>: the layer's weights on those channels, one row per group channel (every
/// output and kernel tap along the row). A kernel's taps share the channel moments (the spatial
/// correlation between taps is not modelled).
/// </summary>
public sealed record ConsumerStatistics(double[] Moments, FilterMatrix Weights)
{
    public int Width => Weights.Rows;
}
