using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// Times keep counts for real: the original model with every group cut to its first k channels (k/blocks from each block of a grouped conv) (which channels
/// does not change the time; no compensation), run alternately with the original on seeded inputs. One session of
/// the original serves every check.
/// </summary>
internal sealed class KeepTimer : IDisposable
{
    /// <summary>Seconds of timed rounds per check (at least <see cref="MinRounds"/> rounds).</summary>
    private const double SecondsPerCheck = 1.5;
    private const int MinRounds = 7, MaxRounds = 40;

    private readonly OnnxModel _original;
    private readonly IReadOnlyDictionary<string, long[]> _shapes;
    private readonly PruneOptions _options;
    private readonly ModelRunner _runner;
    private readonly List<NamedTensor> _inputs;

    public KeepTimer(OnnxModel original, byte[] originalBytes, IReadOnlyDictionary<string, long[]> shapes, PruneOptions options)
    {
        _original = original;
        _shapes = shapes;
        _options = options;
        _runner = new ModelRunner(originalBytes, options.Provider, options.LatencyThreads);
        _inputs = InputGenerator.Generate(_runner.Inputs, InputShapes.Resolve(_runner.Inputs, options.InputShapes), seed: 0);
    }

    /// <summary>Pruned over original run time at these keep counts (one per group id).</summary>
    public double Ratio(int[] keep)
    {
        using var clone = _original.Clone();
        var groups = ChannelGroups.Find(clone, _shapes);
        if (groups.Count != keep.Length) throw new InvalidOperationException($"the model has {groups.Count} channel groups, the plan {keep.Length}");
        var keepByGroup = groups.Where(g => keep[g.Id] < g.Width).ToDictionary(g => g.Id, g => g.FirstChannels(keep[g.Id]));
        ChannelPruner.Apply(clone, groups, keepByGroup, RewriteOptions.Plain);
        using var pruned = new ModelRunner(clone.ToBytes(), _options.Provider, _options.LatencyThreads);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        LatencyBenchmark.MeasureRatio(_runner, pruned, _inputs, rounds: 1, warmup: 1, singleThread: false);
        int rounds = Math.Clamp((int)(SecondsPerCheck / Math.Max(1e-3, clock.Elapsed.TotalSeconds / 2)), MinRounds, MaxRounds);
        return LatencyBenchmark.MeasureRatio(_runner, pruned, _inputs, rounds, warmup: 0, singleThread: _options.LatencyThreads == 1);
    }

    public void Dispose() => _runner.Dispose();
}
