using System.Text.Json;

namespace OnnxSlim.Runtime;

/// <summary>One kernel ONNX Runtime ran: its node name (after ORT's own graph rewrites), operator and output shape.</summary>
public sealed record KernelTime(string Name, string OpType, double Milliseconds, long[]? OutputShape);

/// <summary>
/// Per-kernel milliseconds read from ONNX Runtime's profiler and the whole run: medians over the timed runs, each run's
/// figures first scaled to its CPU time when it is known (one thread; see <see cref="Parse"/>), else the least over the
/// runs (a busy machine only ever adds wall time, at random).
/// Names are ORT's: a node it kept has its ONNX name; a conv it moved to the blocked NCHWc layout is named after
/// its output value plus "_nchwc" (the activation's output when one was fused in); layout reorders it inserted are
/// "ReorderInput…"/"ReorderOutput…".
/// </summary>
/// <param name="OutsideKernelsMilliseconds">A run's time outside its kernels (scheduling, allocation): the least over the timed
/// runs, since a busy machine adds to it at random.</param>
/// <param name="NodeMillisecondsPerRun">Per timed run, Σ of the kernels that are not ORT's layout reorders (the work of the
/// model's own nodes), for ratios between models profiled alternately.</param>
public sealed record KernelProfile(double RunMilliseconds, double OutsideKernelsMilliseconds, IReadOnlyList<KernelTime> Kernels, double[] NodeMillisecondsPerRun)
{
    /// <summary>Σ of the kernels that are not ORT's layout reorders: the work of the model's own nodes.</summary>
    public double NodeMilliseconds => Kernels.Where(k => !IsReorder(k.OpType)).Sum(k => k.Milliseconds);

    /// <summary>The median over paired runs of this profile's node time over <paramref name="reference"/>'s (profiled alternately with it).</summary>
    public double RatioTo(KernelProfile reference)
    {
        int n = Math.Min(NodeMillisecondsPerRun.Length, reference.NodeMillisecondsPerRun.Length);
        var ratios = Enumerable.Range(0, n).Where(r => reference.NodeMillisecondsPerRun[r] > 0)
            .Select(r => NodeMillisecondsPerRun[r] / reference.NodeMillisecondsPerRun[r]).ToArray();
        return ratios.Length == 0 ? 1 : Median(ratios);
    }

    public static bool IsReorder(string opType) => opType is "ReorderInput" or "ReorderOutput";

    /// <summary>Reads a profile file: node events are assigned to the run that contains them; the first <paramref name="skipRuns"/> runs are warm-up.</summary>
    /// <param name="cpuPerRun">Per run (warm-up included), the CPU milliseconds of the thread that computed it, when it was
    /// the only one: each run's kernel times are then scaled by CPU/wall, taking out the time other processes held the core
    /// (spread over the run's kernels in proportion, which is exact for a run of one dominant kernel).</param>
    public static KernelProfile Parse(string json, int skipRuns, IReadOnlyList<double>? cpuPerRun = null)
    {
        using var doc = JsonDocument.Parse(json);
        var runs = new List<(double Start, double End)>();
        var nodes = new List<(double Ts, string Name, string Op, double Us, long[]? Shape)>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            string cat = e.GetProperty("cat").GetString() ?? "";
            string name = e.GetProperty("name").GetString() ?? "";
            double ts = e.GetProperty("ts").GetDouble(), dur = e.GetProperty("dur").GetDouble();
            if (cat == "Session" && name == "model_run") runs.Add((ts, ts + dur));
            else if (cat == "Node" && name.EndsWith("_kernel_time", StringComparison.Ordinal) && e.TryGetProperty("args", out var args))
            {
                string op = args.TryGetProperty("op_name", out var o) ? o.GetString() ?? "" : "";
                nodes.Add((ts, name[..^"_kernel_time".Length], op, dur, Shape(args)));
            }
        }
        runs.Sort();
        var timed = runs.Skip(skipRuns).ToList();
        if (timed.Count == 0) throw new ArgumentException($"the profile holds {runs.Count} runs, none after the {skipRuns} warm-up runs", nameof(skipRuns));
        // Per kernel and timed run: microseconds (a node inside a loop can run several times per run).
        var perRun = new Dictionary<string, (string Op, long[]? Shape, double[] Us)>(StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            int r = timed.FindIndex(run => n.Ts >= run.Start && n.Ts <= run.End);
            if (r < 0) continue;
            if (!perRun.TryGetValue(n.Name, out var entry)) perRun[n.Name] = entry = (n.Op, n.Shape, new double[timed.Count]);
            entry.Us[r] += n.Us;
        }
        bool scaled = cpuPerRun is not null && cpuPerRun.Count == runs.Count;
        if (scaled)
            for (int r = 0; r < timed.Count; r++)
            {
                double wall = timed[r].End - timed[r].Start, cpu = cpuPerRun![skipRuns + r] * 1000;
                double scale = wall > 0 ? Math.Min(1, cpu / wall) : 1;
                timed[r] = (timed[r].Start, timed[r].Start + wall * scale);
                foreach (var entry in perRun.Values) entry.Us[r] *= scale;
            }
        // Scaled runs are unbiased one by one (the least of them would pick the runs whose stolen time fell elsewhere).
        Func<double[], double> statistic = scaled ? Median : values => values.Min();
        var kernels = perRun.Select(kv => new KernelTime(kv.Key, kv.Value.Op, statistic(kv.Value.Us) / 1000, kv.Value.Shape)).ToList();
        double outside = Enumerable.Range(0, timed.Count).Min(r => timed[r].End - timed[r].Start - perRun.Values.Sum(k => k.Us[r]));
        var nodePerRun = Enumerable.Range(0, timed.Count).Select(r => perRun.Values.Where(k => !IsReorder(k.Op)).Sum(k => k.Us[r]) / 1000).ToArray();
        return new KernelProfile(Median([.. timed.Select(r => r.End - r.Start)]) / 1000, Math.Max(0, outside) / 1000, kernels, nodePerRun);
    }

    private static long[]? Shape(JsonElement args)
    {
        // "output_type_shape": [{"float": [1, 32, 56, 56]}]
        if (!args.TryGetProperty("output_type_shape", out var outputs) || outputs.ValueKind != JsonValueKind.Array) return null;
        foreach (var output in outputs.EnumerateArray())
            foreach (var typed in output.EnumerateObject())
                if (typed.Value.ValueKind == JsonValueKind.Array) return [.. typed.Value.EnumerateArray().Select(d => d.GetInt64())];
        return null;
    }

    internal static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n == 0 ? 0 : n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }
}
