namespace OnnxSlim.Spectral;

/// <summary>Baseline: a uniformly random subset, deterministic for a given seed.</summary>
public sealed class RandomSelector(int seed) : IFilterSelector
{
    public int Seed { get; } = seed;

    public int[] Select(FilterMatrix m, int keep)
    {
        SelectorArgs.CheckRowsOnly(m, keep);
        // A seeded System.Random is a fixed algorithm across runs and .NET versions.
        var rng = new Random(Seed);
        var idx = Enumerable.Range(0, m.Rows).ToArray();
        for (int i = 0; i < keep; i++)
        {
            int k = i + rng.Next(m.Rows - i);
            (idx[i], idx[k]) = (idx[k], idx[i]);
        }
        return SelectorArgs.Ascending(idx[..keep]);
    }
}
