namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Whether a kernel should split its work across threads right now: only when a core would otherwise
/// idle. The group loops (<see cref="FilterSpectrum.ComputeAll"/>, <see cref="FilterSelectors.SelectAll"/>)
/// count the groups in progress; while every core has a group of its own, nested Parallel.For only adds
/// overhead (ResNet-50's plan spent ~1 s more CPU with it on 2 cores), but once the small groups are done
/// the largest one, still running, should use every core. Kernels must give the same bits either way.
/// </summary>
internal static class IdleCores
{
    private static int _busy;

    public static bool Any => Environment.ProcessorCount > 1 && Volatile.Read(ref _busy) < Environment.ProcessorCount;

    /// <summary>Runs <paramref name="wait"/> (blocking on work elsewhere) with the caller's core counted as free meanwhile.</summary>
    public static void Waiting(Action wait)
    {
        Interlocked.Decrement(ref _busy);
        try { wait(); }
        finally { Interlocked.Increment(ref _busy); }
    }

    /// <summary>Runs one group's work, counted as occupying a core.</summary>
    public static void Occupy(Action work)
    {
        Interlocked.Increment(ref _busy);
        try { work(); }
        finally { Interlocked.Decrement(ref _busy); }
    }
}
