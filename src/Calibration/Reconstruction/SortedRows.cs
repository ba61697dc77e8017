namespace OnnxSlim.Calibration;

/// <summary>Searches in the ascending sample-row indices that fits and recordings keep.</summary>
internal static class SortedRows
{
    /// <summary>The first index whose value is at least <paramref name="value"/> (the length when none is).</summary>
    public static int LowerBound(long[] sorted, long value)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] < value) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
