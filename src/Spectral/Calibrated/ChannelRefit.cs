using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// The least-squares re-fit that <see cref="ChannelElimination"/> assumes, made explicit for one reader: with the
/// channels outside <c>keep</c> removed, a reader's weights w (over the group's features) become w_R + X·w_J on the
/// kept features R, X = (G_RR + λ·I)⁻¹·G_RJ, which rebuilds from the kept features what the dropped ones J carried
/// (λ: the elimination's damping). What the allocation's end-to-end check applies to a model's weights.
/// </summary>
public static class ChannelRefit
{
    /// <param name="keep">Kept channels of the group (distinct, in [0, width)).</param>
    /// <param name="kept">The kept features (channel-major, then tap), in the order of X's rows.</param>
    /// <param name="dropped">The dropped features, in the order of X's columns.</param>
    /// <returns>X, row-major |kept|×|dropped|.</returns>
    public static double[] Transfer(ConsumerStatistics reader, IReadOnlyCollection<int> keep, out int[] kept, out int[] dropped)
    {
        ArgumentNullException.ThrowIfNull(reader);
        int width = reader.Width, t = reader.Taps, n = width * t;
        var isKept = new bool[width];
        foreach (int c in keep)
        {
            if (c < 0 || c >= width || isKept[c]) throw new ArgumentException($"kept channel {c} is outside [0, {width}) or repeated", nameof(keep));
            isKept[c] = true;
        }
        var keptList = new List<int>();
        var droppedList = new List<int>();
        for (int f = 0; f < n; f++) (isKept[f / t] ? keptList : droppedList).Add(f);
        kept = [.. keptList];
        dropped = [.. droppedList];
        int r = kept.Length, j = dropped.Length;
        var x = new double[(long)r * j];
        if (r == 0 || j == 0) return x;
        double trace = 0;
        for (int f = 0; f < n; f++) trace += reader.Moments[(long)f * n + f];
        double damping = Math.Max(ChannelElimination.Damping * trace / n, double.Epsilon);
        var a = new double[(long)r * r];
        for (int p = 0; p < r; p++)
        {
            for (int q = 0; q < r; q++) a[(long)p * r + q] = reader.Moments[(long)kept[p] * n + kept[q]];
            a[(long)p * r + p] += damping;
            for (int q = 0; q < j; q++) x[(long)p * j + q] = reader.Moments[(long)kept[p] * n + dropped[q]];
        }
        if (!Cholesky.Factor(a, r)) throw new ArgumentException("the kept features' moments are not positive definite (non-finite moments?)", nameof(reader));
        Cholesky.Solve(a, r, x, j);
        return x;
    }
}
