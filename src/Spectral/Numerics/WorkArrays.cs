namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Large float64 work arrays (Grams, Q factors, epoch copies) handed back for reuse by later requests of
/// the same or a somewhat smaller size. Why: on the 2-core VM the first touch of a fresh 4 KB page costs
/// microseconds, and a ResNet-50 plan touched ~0.5 GB of fresh n² buffers, which the GC seldom recycles
/// in time (large objects wait for a gen-2 collection). Returned arrays are held weakly: the GC still
/// frees them whenever it collects, so nothing is kept alive beyond what it would keep anyway.
/// </summary>
internal static class WorkArrays
{
    private const int MinLength = 1 << 15; // smaller arrays are cheap to get fresh
    private const int MaxSlack = 4;        // never hand out more than 4× the request (a big one may be needed soon)

    private static readonly List<WeakReference<double[]>> Returned = [];

    /// <summary>At least <paramref name="length"/> values; contents are undefined (an earlier user's data).</summary>
    public static double[] Rent(int length)
    {
        if (length >= MinLength)
            lock (Returned)
            {
                int best = -1;
                double[]? found = null;
                for (int i = Returned.Count - 1; i >= 0; i--)
                {
                    if (!Returned[i].TryGetTarget(out var a)) { Returned.RemoveAt(i); if (best > i) best--; continue; }
                    if (a.Length >= length && a.Length / MaxSlack <= length && (found is null || a.Length < found.Length)) { found = a; best = i; }
                }
                if (found is not null) { Returned.RemoveAt(best); return found; }
            }
        return GC.AllocateUninitializedArray<double>(length);
    }

    /// <summary>As <see cref="Rent"/>, with the first <paramref name="length"/> values set to zero.</summary>
    public static double[] RentCleared(int length)
    {
        var a = Rent(length);
        Array.Clear(a, 0, length);
        return a;
    }

    /// <summary>Hands <paramref name="a"/> back; the caller must not touch it afterwards.</summary>
    public static void Return(double[]? a)
    {
        if (a is null || a.Length < MinLength) return;
        lock (Returned) Returned.Add(new WeakReference<double[]>(a));
    }
}
