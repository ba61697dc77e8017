namespace OnnxSlim.Calibration;

/// <summary>
/// A pass's batches in two stages: each is produced (read and run into an arena) on one of several threads at once,
/// then consumed (the sums, the recording) on the caller's thread one at a time and in batch order, so every sum is
/// what one thread taking the batches in turn would give. Batch b uses arena b mod <see cref="Arenas"/>(producers, bytes): its
/// producer waits until the batch that used that arena before has been consumed.
/// Why: a pass over a whole model is bound by ONNX Runtime, whose small per-sample kernels gain little from a second
/// thread inside one run (hand-overs between them); two runs of one thread side by side keep both cores busy instead.
/// </summary>
internal static class OrderedPipeline
{
    /// <summary>
    /// Arenas the pipeline cycles through: one per producer, the one being consumed, and spare ones of
    /// <paramref name="arenaBytes"/> each within <see cref="SpareBytes"/>; with no producers (in turn, see
    /// <see cref="Run(int, int, int, bool, Action{int, int}, Action{int, int})"/>) two: one produced into while the other is consumed.
    /// Why spares: a batch's consumption is uneven (the sums' products fall due every few batches), and with no arena free
    /// both producers waited on it. PP-OCRv4 rec's moments pass (31 MiB arenas): 4.8 → 4.3 s with four spares, the same sums;
    /// ResNet-50's (74 MiB, bound by ONNX Runtime) gains nothing from them, so the budget gives it one.
    /// </summary>
    public static int Arenas(int producers, long arenaBytes) =>
        producers > 0 ? producers + 1 + (int)Math.Min(MaxSpares, SpareBytes / Math.Max(arenaBytes, 1)) : 2;

    private const long SpareBytes = 128L << 20;
    private const int MaxSpares = 4;

    /// <summary>
    /// <see cref="Run(int, int, int, Action{int, int}, Action{int, int})"/> with <paramref name="producers"/> > 0; with none, the
    /// batches are produced in turn on the caller's thread, batch b into arena b mod 2, and each is consumed on another
    /// thread while the next one is produced (<paramref name="alongside"/>) or right after it. The same sums every way.
    /// </summary>
    public static void Run(int batches, int producers, int arenas, bool alongside, Action<int, int> produce, Action<int, int> consume)
    {
        if (producers > 0)
        {
            Run(batches, producers, arenas, produce, consume);
            return;
        }
        using var consumer = new OrderedConsumer(alongside);
        for (int b = 0; b < batches; b++)
        {
            int current = b, k = b % 2;
            produce(b, k);
            consumer.Next(() => consume(current, k));
        }
        consumer.Finish();
    }

    /// <param name="produce">(batch, arena): fills the arena; runs on a pool thread, several at once.</param>
    /// <param name="consume">(batch, arena): runs on the caller's thread, batches in order.</param>
    /// <param name="arenas">At least <paramref name="producers"/> + 1 (see <see cref="Arenas"/>).</param>
    public static void Run(int batches, int producers, int arenas, Action<int, int> produce, Action<int, int> consume)
    {
        if (producers < 1) throw new ArgumentException($"a pipeline needs at least one producer, got {producers}", nameof(producers));
        if (arenas <= producers) throw new ArgumentException($"{producers} producers need at least {producers + 1} arenas, got {arenas}", nameof(arenas));
        var gate = new object();
        var ready = new bool[batches];
        int next = -1, consumed = 0;
        Exception? failure = null;

        void Producer()
        {
            while (true)
            {
                int b = Interlocked.Increment(ref next);
                if (b >= batches) return;
                lock (gate)
                {
                    while (consumed <= b - arenas && failure is null) Monitor.Wait(gate);
                    if (failure is not null) return;
                }
                try { produce(b, b % arenas); }
                catch (Exception e)
                {
                    lock (gate) { failure ??= e; Monitor.PulseAll(gate); }
                    return;
                }
                lock (gate) { ready[b] = true; Monitor.PulseAll(gate); }
            }
        }

        var workers = Enumerable.Range(0, Math.Min(producers, batches)).Select(_ => Task.Factory.StartNew(Producer, TaskCreationOptions.LongRunning)).ToArray();
        try
        {
            for (int b = 0; b < batches; b++)
            {
                lock (gate)
                {
                    while (!ready[b] && failure is null) Monitor.Wait(gate);
                    if (failure is not null) break;
                }
                consume(b, b % arenas);
                lock (gate) { consumed = b + 1; Monitor.PulseAll(gate); }
            }
        }
        catch (Exception e)
        {
            lock (gate) { failure ??= e; Monitor.PulseAll(gate); }
        }
        Task.WaitAll(workers);
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
    }
}
