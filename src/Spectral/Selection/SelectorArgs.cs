namespace OnnxSlim.Spectral;

internal static class SelectorArgs
{
    public static void CheckKeep(FilterMatrix m, int keep)
    {
        if (keep < 1 || keep > m.Rows)
            throw new ArgumentException($"keep must be in 1..{m.Rows} (the group's rows), got {keep}", nameof(keep));
    }
}
