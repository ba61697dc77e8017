namespace OnnxSlim.Calibration.Tests;

/// <summary>Batches produced on several threads, consumed in order, each arena reused only once consumed.</summary>
public sealed class OrderedPipelineTests
{
    [Theory]
    [InlineData(0, 1, 1L << 20)]
    [InlineData(0, 37, 1L << 20)]
    [InlineData(1, 1, 1L << 20)]
    [InlineData(2, 1, 1L << 30)]
    [InlineData(2, 37, 1L << 30)]
    [InlineData(2, 37, 1L << 20)]
    [InlineData(4, 100, 48L << 20)]
    public void Batches_are_consumed_in_order_from_arenas_no_producer_is_still_writing(int producers, int batches, long arenaBytes)
    {
        int arenas = OrderedPipeline.Arenas(producers, arenaBytes);
        var content = new int[arenas];
        var busy = new int[arenas];
        var order = new List<int>();
        var random = new Random(3);
        var delays = Enumerable.Range(0, batches).Select(_ => random.Next(3)).ToArray();
        // No producers: produced in turn on this thread, each batch consumed on another while the next one is produced.
        OrderedPipeline.Run(batches, producers, arenas, alongside: true, (b, k) =>
        {
            Assert.Equal(0, Interlocked.Exchange(ref busy[k], 1));
            Thread.Sleep(delays[b]);
            content[k] = b;
            Volatile.Write(ref busy[k], 0);
        }, (b, k) =>
        {
            Assert.Equal(0, Volatile.Read(ref busy[k]));
            Assert.Equal(b, content[k]); // what its producer wrote, not yet overwritten by a later batch
            order.Add(b);
        });
        Assert.Equal(Enumerable.Range(0, batches), order);
    }

    [Fact]
    public void A_failure_on_either_side_is_rethrown_and_stops_the_pass()
    {
        int consumed = 0;
        var e = Assert.Throws<InvalidOperationException>(() => OrderedPipeline.Run(50, 2, 3,
            (b, _) => { if (b == 7) throw new InvalidOperationException("run 7"); }, (_, _) => consumed++));
        Assert.Equal("run 7", e.Message);
        Assert.True(consumed <= 7);
        e = Assert.Throws<InvalidOperationException>(() => OrderedPipeline.Run(50, 2, 7, (_, _) => { },
            (b, _) => { if (b == 3) throw new InvalidOperationException("sum 3"); }));
        Assert.Equal("sum 3", e.Message);
        Assert.Throws<ArgumentException>(() => OrderedPipeline.Run(3, 0, 2, (_, _) => { }, (_, _) => { }));
        Assert.Throws<ArgumentException>(() => OrderedPipeline.Run(3, 2, 2, (_, _) => { }, (_, _) => { }));
    }

    /// <summary>
    /// Spare arenas (small ones, within a byte budget) let the producers run that many batches further ahead of a consumer
    /// held up on one batch; none where an arena is large.
    /// </summary>
    [Fact]
    public void Spare_arenas_let_producers_run_ahead_of_a_slow_consumer()
    {
        int cycle = OrderedPipeline.Arenas(2, arenaBytes: 8L << 20);
        Assert.Equal(2 + 1 + 4, cycle);
        Assert.Equal(2 + 1 + 1, OrderedPipeline.Arenas(2, arenaBytes: 74L << 20));
        Assert.Equal(2 + 1, OrderedPipeline.Arenas(2, arenaBytes: 1L << 30));
        Assert.Equal(2, OrderedPipeline.Arenas(0, arenaBytes: 8L << 20));
        int produced = 0, producedWhileFirstWaits = -1;
        OrderedPipeline.Run(20, 2, cycle, (_, _) => Interlocked.Increment(ref produced), (b, _) =>
        {
            if (b != 0) return;
            SpinWait.SpinUntil(() => Volatile.Read(ref produced) >= cycle, TimeSpan.FromSeconds(10));
            Thread.Sleep(50);
            producedWhileFirstWaits = Volatile.Read(ref produced);
        });
        // Batches 0 … cycle − 1, and no more: batch `cycle` needs batch 0's arena.
        Assert.Equal(cycle, producedWhileFirstWaits);
    }
}
