namespace OnnxSlim.Calibration;

/// <summary>
/// Consumes a pass's batches one at a time and in order, each on another thread while the caller reads and runs the
/// next one into its other arena (or on the caller's thread when not <c>alongside</c>): the sums come out the same bits
/// either way. Disposing waits for a consumer still running, so that a failure never leaves one on the arenas.
/// </summary>
internal sealed class OrderedConsumer(bool alongside) : IDisposable
{
    private Task? _running;

    /// <summary>Waits for the previous batch's consumer (rethrowing its failure), then consumes this batch.</summary>
    public void Next(Action consume)
    {
        Finish();
        if (alongside) _running = Task.Run(consume);
        else consume();
    }

    /// <summary>Waits for the last batch's consumer, rethrowing its failure.</summary>
    public void Finish()
    {
        var running = _running;
        _running = null;
        running?.GetAwaiter().GetResult();
    }

    /// <summary>After a failure: waits for a consumer still running (its own failure was rethrown, or is secondary).</summary>
    public void Dispose()
    {
        if (_running is { IsCompleted: false } running)
            try { running.Wait(); }
            catch (AggregateException) { }
    }
}
