namespace OnnxSlim.Calibration;

/// <summary>Seeded uniform sampling of row indices without replacement, returned sorted (so batches read them in order).</summary>
internal static class PositionSampler
{
    public static long[] Sample(long total, int count, int seed)
    {
        if (total < 0) throw new ArgumentException($"total must be ≥ 0, got {total}");
        if (count < 0) throw new ArgumentException($"count must be ≥ 0, got {count}");
        if (count >= total)
        {
            var all = new long[total];
            for (long i = 0; i < total; i++) all[i] = i;
            return all;
        }
        // Floyd's algorithm: count draws, no array of size total.
        var rng = new Random(seed);
        var chosen = new HashSet<long>(count);
        for (long j = total - count; j < total; j++)
        {
            long t = rng.NextInt64(j + 1);
            if (!chosen.Add(t)) chosen.Add(j);
        }
        var result = chosen.ToArray();
        Array.Sort(result);
        return result;
    }

    /// <summary>A per-layer seed from the user's seed and the layer's name, stable across runs and platforms.</summary>
    public static int LayerSeed(int seed, string name)
    {
        // FNV-1a: string.GetHashCode is randomised per process.
        uint h = 2166136261;
        foreach (char c in name) h = (h ^ c) * 16777619;
        h ^= (uint)seed;
        h *= 16777619;
        return (int)(h & 0x7fffffff);
    }
}
