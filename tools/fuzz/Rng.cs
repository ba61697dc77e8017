namespace OnnxSlim.Fuzz;

/// <summary>
/// SplitMix64: a tiny, fully specified generator, so the same seed gives the same cases on every .NET
/// version and platform (System.Random's seeded sequence is an implementation detail).
/// </summary>
public sealed class Rng(ulong seed)
{
    private ulong _state = seed;

    /// <summary>The generator of case <paramref name="index"/> under <paramref name="seed"/>: cases are independent,
    /// so case i is the same whatever the count, and one case can be regenerated alone.</summary>
    public static Rng ForCase(int seed, int index) => new(Mix(((ulong)(uint)seed << 32) ^ (uint)index ^ 0x5EED_F022UL));

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextU64() => Mix(_state += 0x9E3779B97F4A7C15UL);

    /// <summary>Uniform in [0, n).</summary>
    public int Next(int n) => n <= 1 ? 0 : (int)(NextU64() % (ulong)n);

    /// <summary>Uniform in [lo, hi).</summary>
    public int Range(int lo, int hi) => lo + Next(hi - lo);

    public double NextDouble() => (NextU64() >> 11) * (1.0 / (1UL << 53));

    public bool Chance(double p) => NextDouble() < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];

    public T Pick<T>(List<T> items) => items[Next(items.Count)];

    public T Pick<T>(params T[] items) => items[Next(items.Length)];

    /// <summary>Picks by weight: pairs of (weight, value).</summary>
    public T Weighted<T>(params (double Weight, T Value)[] items)
    {
        double total = items.Sum(i => i.Weight), x = NextDouble() * total;
        foreach (var (w, v) in items)
        {
            if (x < w) return v;
            x -= w;
        }
        return items[^1].Value;
    }

    public float Normal(double scale = 1.0)
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return (float)(scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }

    public byte[] Bytes(int n)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)NextU64();
        return b;
    }
}
