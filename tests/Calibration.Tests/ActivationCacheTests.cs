namespace OnnxSlim.Calibration.Tests;

public sealed class ActivationCacheTests
{
    // Three images of 100,000 values: 300,000 values in two chunks, the third image across the chunks' boundary.
    private const int Images = 3, PerSample = 100_000;
    private static readonly long[] Shape = [1, 4, PerSample / 4];

    private static float[] Values(int seed) => [.. Enumerable.Range(0, Images * PerSample).Select(i => (float)(seed * 1_000_000 + i))];

    private static void Store(ActivationCache cache, string value, float[] values, int batch)
    {
        for (int first = 0; first < Images; first += batch)
        {
            int count = Math.Min(batch, Images - first);
            cache.Store(value, first, values.AsSpan(first * PerSample, count * PerSample));
        }
    }

    private static float[] Read(ActivationCache cache, string value, int batch)
    {
        var result = new float[Images * PerSample];
        for (int first = 0; first < Images; first += batch)
        {
            int count = Math.Min(batch, Images - first);
            cache.Read(value, first, count, result.AsSpan(first * PerSample, count * PerSample));
        }
        return result;
    }

    [Fact]
    public void A_dropped_values_chunks_hold_the_next_value_and_every_value_reads_back_as_stored()
    {
        using var cache = new ActivationCache(Images, budgetBytes: 1L << 30);
        var none = new HashSet<string>();
        Assert.True(cache.Reserve("a", Shape, none));
        Assert.True(cache.Reserve("b", Shape, none));
        Store(cache, "a", Values(1), batch: 1);
        Store(cache, "b", Values(2), batch: 2);
        cache.Commit();
        Assert.Equal(4, cache.FileChunks);
        Assert.Equal(Values(1), Read(cache, "a", batch: 2));
        Assert.Equal(Values(2), Read(cache, "b", batch: 1));

        // "a" goes; "c" takes its two chunks and the file does not grow; "d" needs two more.
        cache.Retain(new HashSet<string> { "b" });
        Assert.False(cache.Contains("a"));
        Assert.True(cache.Reserve("c", Shape, none));
        Assert.True(cache.Reserve("d", Shape, none));
        Assert.Equal(6, cache.FileChunks);
        Assert.False(cache.Contains("c"));
        Store(cache, "c", Values(3), batch: 3);
        Store(cache, "d", Values(4), batch: 1);
        cache.Commit();
        Assert.Equal(Values(2), Read(cache, "b", batch: 3));
        Assert.Equal(Values(3), Read(cache, "c", batch: 1));
        Assert.Equal(Values(4), Read(cache, "d", batch: 2));
    }

    [Fact]
    public void The_byte_budget_evicts_the_oldest_value_but_not_a_pinned_one()
    {
        long bytes = (long)Images * PerSample * sizeof(float);
        using var cache = new ActivationCache(Images, budgetBytes: 2 * bytes);
        var none = new HashSet<string>();
        Assert.True(cache.Reserve("a", Shape, none));
        Assert.True(cache.Reserve("b", Shape, none));
        cache.Commit();
        Assert.True(cache.Reserve("c", Shape, new HashSet<string> { "a" }));
        Assert.True(cache.Contains("a"));
        Assert.False(cache.Contains("b"));
        Assert.Equal(4, cache.FileChunks);
    }
}
