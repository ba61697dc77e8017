using System.CommandLine;
using OnnxSlim.Runtime;
using Spectre.Console;

namespace OnnxSlim.Cli.Commands;

/// <summary>`onnxslim bench MODEL [--vs OTHER]`: ONNX Runtime latency and throughput, side by side when compared.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model to time" };
        var vs = new Option<string?>("--vs") { Description = "A second model to time alternately with the first (e.g. the pruned one)" };
        var runs = new Option<int>("--runs") { Description = "Timed runs per model", DefaultValueFactory = _ => 50 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs first", DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch") { Description = "Batch size for dynamic batch dims", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0 = all cores)", DefaultValueFactory = _ => 0 };
        var shape = CommonOptions.Shape();
        var provider = CommonOptions.Provider();
        var json = CommonOptions.Json();
        var cmd = new Command("bench", "Time a model on ONNX Runtime (median and p90 latency, throughput)")
        {
            model, vs, runs, warmup, batch, threads, shape, provider, json,
        };
        cmd.SetAction(p =>
        {
            var paths = new List<string> { CommonOptions.RequireFile(p.GetValue(model)!, "model") };
            if (p.GetValue(vs) is { } other) paths.Add(CommonOptions.RequireFile(other, "model"));
            if (p.GetValue(runs) < 1) throw new CliError($"--runs must be at least 1, got {p.GetValue(runs)}");
            if (p.GetValue(batch) < 1) throw new CliError($"--batch must be at least 1, got {p.GetValue(batch)}");
            if (p.GetValue(warmup) < 0) throw new CliError($"--warmup must be at least 0, got {p.GetValue(warmup)}");
            var runtime = CommonOptions.ParseProvider(p.GetValue(provider)!);
            using var timing = new Timing([.. paths.Select(ModelFiles.RuntimeBytes)], runtime, p.GetValue(shape)!, p.GetValue(threads));
            var results = timing.Measure(p.GetValue(batch), p.GetValue(runs), p.GetValue(warmup));
            if (p.GetValue(json))
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(paths.Zip(results, (path, r) => new
                {
                    model = path, median_ms = r.MedianMs, p90_ms = r.P90Ms, mean_ms = r.MeanMs, runs = r.Runs, batch = r.Batch,
                    throughput_per_s = r.ThroughputPerSecond,
                })));
                return ExitCodes.Ok;
            }
            var table = new Table().AddColumns("model", "batch", "median ms", "p90 ms", "throughput /s");
            for (int i = 0; i < paths.Count; i++)
                table.AddRow(Markup.Escape(Path.GetFileName(paths[i])), results[i].Batch.ToString(), $"{results[i].MedianMs:F2}",
                    $"{results[i].P90Ms:F2}", $"{results[i].ThroughputPerSecond:F1}");
            AnsiConsole.Write(table);
            if (results.Length == 2)
                AnsiConsole.WriteLine($"speedup of {Path.GetFileName(paths[1])} over {Path.GetFileName(paths[0])}: {results[0].MedianMs / results[1].MedianMs:F2}x (median latency)");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
