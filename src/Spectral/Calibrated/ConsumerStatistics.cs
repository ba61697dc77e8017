namespace OnnxSlim.Spectral;

/// <summary>
/// One layer reading a group's channels, as calibration data sees it: <paramref name="Weights"/> has one
/// row per group channel, holding the layer's weights on it ordered (output, tap); <paramref name="Taps"/>
/// features per channel (a conv's kernel area when measured on im2col patches, else 1).
/// <paramref name="Moments"/>: E[x·xᵀ] of those features, (Width·Taps)², ordered (channel, tap). With
/// Taps = 1 on a conv, the kernel's taps share the channel moments (their correlation is not modelled).
/// </summary>
public sealed record ConsumerStatistics(double[] Moments, FilterMatrix Weights, int Taps = 1)
{
    public int Width => Weights.Rows;
}
