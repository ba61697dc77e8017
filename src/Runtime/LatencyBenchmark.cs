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

    private static LatencyResult Summarise(double[] times, int batch)
    {
        var sorted = times.Order().ToArray();
        double Percentile(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        return new LatencyResult(median, Percentile(0.9), times.Average(), times.Length, Math.Max(batch, 1));
    }
}
