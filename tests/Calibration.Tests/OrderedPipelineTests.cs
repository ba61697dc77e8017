namespace OnnxSlim.Calibration.Tests;

/// <summary>Batches produced on several threads, consumed in order, each arena reused only once consumed.</summary>
public sealed class OrderedPipelineTests
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(0, 37)]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 37)]
    [InlineData(4, 100)]
    public void Batches_are_consumed_in_order_from_arenas_no_producer_is_still_writing(int producers, int batches)
    {
        int arenas = OrderedPipeline.Arenas(producers);
        var content = new int[arenas];
        var busy = new int[arenas];
        var order = new List<int>();
        var random = new Random(3);
        var delays = Enumerable.Range(0, batches).Select(_ => random.Next(3)).ToArray();
        // No producers: produced in turn on this thread, each batch consumed on another while the next one is produced.
        OrderedPipeline.Run(batches, producers, alongside: true, (b, k) =>
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
        var e = Assert.Throws<InvalidOperationException>(() => OrderedPipeline.Run(50, 2,
            (b, _) => { if (b == 7) throw new InvalidOperationException("run 7"); }, (_, _) => consumed++));
        Assert.Equal("run 7", e.Message);
        Assert.True(consumed <= 7);
        e = Assert.Throws<InvalidOperationException>(() => OrderedPipeline.Run(50, 2, (_, _) => { },
            (b, _) => { if (b == 3) throw new InvalidOperationException("sum 3"); }));
        Assert.Equal("sum 3", e.Message);
        Assert.Throws<ArgumentException>(() => OrderedPipeline.Run(3, 0, (_, _) => { }, (_, _) => { }));
    }
}
