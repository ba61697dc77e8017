using System.Diagnostics;
using OnnxSlim.Pruning;
using OnnxSlim.Rewriter;

namespace OnnxSlim.Spectral.Bench;

/// <summary>
/// The CLI's "plan (spectra, allocation, selection)" stage, Planner.Plan, on a real model: wall and CPU
/// time and the peak resident memory while it runs. --naive: MathNet's plain Svd() of the same group
/// matrices instead (spectra only: the reference cost). Loading and analysing the model (shape probe,
/// channel groups, costs) come first and are not timed.
/// </summary>
internal static class RealModel
{
    public static void Run(string path, double cr, bool naive)
    {
        using var model = OnnxSlim.GraphIO.OnnxModel.Load(path);
        var analysis = ModelAnalysis.Run(model, []);
        var active = analysis.Groups.Where(g => g.Prunable).ToList();
        var widest = active.MaxBy(g => g.Width)!;
        Console.WriteLine($"{Path.GetFileName(path)}: {active.Count} prunable groups of {analysis.Groups.Count}, {active.Sum(g => g.Width)} channels, widest {widest.Width}; " +
            $"machine: {Environment.ProcessorCount} cores, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = ResetPeak();
        var process = Process.GetCurrentProcess();
        double cpu0 = process.TotalProcessorTime.TotalSeconds;
        var clock = Stopwatch.StartNew();
        string what;
        if (naive)
        {
            var matrices = active.AsParallel().AsOrdered().Select(g => GroupMatrices.Build(analysis.Groups.Graph, g)).ToList();
            NaiveSvd.Spectra(matrices);
            what = "group matrices + MathNet Svd() spectra only";
        }
        else
        {
            var plan = Planner.Plan(analysis, new PruneOptions { Ratio = cr });
            what = $"Planner.Plan, --cr {cr}: {plan.KeepByGroup.Count} groups pruned, achieved {plan.Allocation!.AchievedReduction:P1} MACs";
        }
        double wall = clock.Elapsed.TotalSeconds;
        process.Refresh();
        double cpu = process.TotalProcessorTime.TotalSeconds - cpu0;
        Console.WriteLine($"{what}: {wall:F2} s wall, {cpu:F2} s CPU, peak RSS {Status("VmHWM") / 1024.0:F0} MiB (model and analysis alone {before / 1024.0:F0} MiB)");
    }

    /// <summary>Resets the kernel's peak-RSS mark to the current RSS (Linux clear_refs 5); returns that RSS in KiB.</summary>
    private static long ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { Console.WriteLine("note: could not reset the peak-RSS mark; the peak includes loading and analysis"); }
        catch (UnauthorizedAccessException) { Console.WriteLine("note: could not reset the peak-RSS mark; the peak includes loading and analysis"); }
        return Status("VmRSS");
    }

    private static long Status(string key) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":"))[(key.Length + 1)..].Trim().Split(' ')[0]);
}
