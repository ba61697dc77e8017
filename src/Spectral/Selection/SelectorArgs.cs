namespace OnnxSlim.Spectral;

internal static class SelectorArgs
{
    public static void CheckKeep(FilterMatrix m, int keep)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (keep < 1 || keep > m.Rows)
            throw new ArgumentException($"keep must be in 1..{m.Rows} (the group's rows), got {keep}", nameof(keep));
    }

    /// <summary>
    /// The checks of a baseline selector, which reads rows only: a factorisation a spectrum computation cached for
    /// GEM is released first, since nothing will read it.
    /// </summary>
    public static void CheckRowsOnly(FilterMatrix m, int keep)
    {
        CheckKeep(m, keep);
        m.ReleaseCache();
    }

    /// <summary>The chosen rows in ascending order, as every selector returns them.</summary>
    public static int[] Ascending(IEnumerable<int> rows)
    {
        var kept = rows.ToArray();
        Array.Sort(kept);
        return kept;
    }
}
