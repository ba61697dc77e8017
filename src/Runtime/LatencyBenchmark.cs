using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;

namespace OnnxSlim.Runtime;

public sealed record LatencyResult(double MedianMs, double P90Ms, double MeanMs, int Runs, int Batch)
{
    public double ThroughputPerSecond => Batch * 1000.0 / MedianMs;
}

/// <summary>Times inference: warm-up runs first, then N timed runs with inputs already in native tensors.</summary>
public static class LatencyBenchmark
{
    public static LatencyResult Measure(ModelRunner runner, IReadOnlyList<NamedTensor> inputs, int runs, int warmup = 3) =>
        MeasureAlternating([runner], [inputs], runs, warmup)[0];

    /// <summary>Times several models in one process, alternating run by run, so machine drift hits each alike.</summary>
    public static LatencyResult[] MeasureAlternating(IReadOnlyList<ModelRunner> runners, IReadOnlyList<IReadOnlyList<NamedTensor>> inputs, int runs, int warmup = 3)
    {
        if (runs < 1) throw new ArgumentException($"runs must be at least 1, got {runs}");
        var prepared = new List<(string[] Names, List<OrtValue> Values)>();
        try
        {
            foreach (var set in inputs) prepared.Add((set.Select(t => t.Name).ToArray(), set.Select(ModelRunner.ToOrtValue).ToList()));
            var times = runners.Select(_ => new double[runs]).ToArray();
            for (int w = 0; w < warmup; w++)
                for (int m = 0; m < runners.Count; m++) runners[m].RunPrepared(prepared[m].Names, prepared[m].Values);
            for (int r = 0; r < runs; r++)
                for (int m = 0; m < runners.Count; m++)
                {
                    long start = Stopwatch.GetTimestamp();
                    runners[m].RunPrepared(prepared[m].Names, prepared[m].Values);
                    times[m][r] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
            return [.. times.Select((t, m) => Summarise(t, (int)(inputs[m].FirstOrDefault()?.Shape.FirstOrDefault() ?? 1)))];
        }
        finally
        {
            foreach (var (_, values) in prepared) foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>
    /// How long <paramref name="b"/> takes per run relative to <paramref name="a"/>: the median over rounds of their paired
    /// run times, the two run back to back each round. Each run is timed in CPU time of the calling thread when one
    /// intra-op thread computes it (<paramref name="singleThread"/>, Linux and macOS), which a busy machine does not
    /// inflate; else in wall time.
    /// </summary>
    public static double MeasureRatio(ModelRunner a, ModelRunner b, IReadOnlyList<NamedTensor> inputs, int rounds, int warmup, bool singleThread)
    {
        if (rounds < 1) throw new ArgumentException($"rounds must be at least 1, got {rounds}", nameof(rounds));
        string[] names = [.. inputs.Select(t => t.Name)];
        var values = inputs.Select(ModelRunner.ToOrtValue).ToList();
        try
        {
            bool cpu = singleThread && ThreadCpuTime.Milliseconds() is not null;
            double Time(ModelRunner runner)
            {
                double start = cpu ? ThreadCpuTime.Milliseconds()!.Value : Stopwatch.GetTimestamp();
                runner.RunPrepared(names, values);
                return cpu ? ThreadCpuTime.Milliseconds()!.Value - start : Stopwatch.GetElapsedTime((long)start).TotalMilliseconds;
            }
            for (int w = 0; w < warmup; w++) { Time(a); Time(b); }
            var ratios = new double[rounds];
            for (int r = 0; r < rounds; r++)
            {
                double ta = Time(a);
                ratios[r] = Time(b) / ta;
            }
            Array.Sort(ratios);
            return rounds % 2 == 1 ? ratios[rounds / 2] : 0.5 * (ratios[rounds / 2 - 1] + ratios[rounds / 2]);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    private static LatencyResult Summarise(double[] times, int batch)
    {
        var sorted = times.Order().ToArray();
        double Percentile(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        return new LatencyResult(median, Percentile(0.9), times.Average(), times.Length, Math.Max(batch, 1));
    }
}
