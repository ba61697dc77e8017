using System.Diagnostics;

namespace OnnxSlim.Pruning;

/// <summary>Runs named stages, records their wall time and tells <see cref="PruneOptions.Progress"/> about them.</summary>
internal sealed class StageClock(Action<PruneProgress>? progress, Action<string>? log = null)
{
    private readonly Dictionary<string, double> _seconds = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, double> Seconds => _seconds;

    public T Run<T>(string name, Func<Action<int, int>, T> work)
    {
        long start = Stopwatch.GetTimestamp();
        progress?.Invoke(new PruneProgress(name, 0, 0, TimeSpan.Zero, Finished: false));
        T result = work((done, total) => progress?.Invoke(new PruneProgress(name, done, total, Stopwatch.GetElapsedTime(start), Finished: false)));
        var elapsed = Stopwatch.GetElapsedTime(start);
        _seconds[name] = _seconds.GetValueOrDefault(name) + elapsed.TotalSeconds;
        if (log is not null)
        {
            using var process = System.Diagnostics.Process.GetCurrentProcess();
            log($"{name}: {elapsed.TotalSeconds:0.00} s, {process.TotalProcessorTime.TotalSeconds:0.0} s CPU so far, " +
                $"resident {process.WorkingSet64 >> 20} MiB (peak {process.PeakWorkingSet64 >> 20}), managed heap {GC.GetTotalMemory(false) >> 20} MiB, " +
                $"GC paused {GC.GetTotalPauseDuration().TotalSeconds:0.00} s so far ({GC.CollectionCount(0)} / {GC.CollectionCount(1)} / {GC.CollectionCount(2)} collections of generations 0 / 1 / 2)");
        }
        progress?.Invoke(new PruneProgress(name, 1, 1, elapsed, Finished: true));
        return result;
    }

    public T Run<T>(string name, Func<T> work) => Run(name, _ => work());

    public void Run(string name, Action work) => Run(name, () => { work(); return 0; });
}
