using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Fuzz;

/// <summary>What the independent checks say about one model file.</summary>
public sealed record ModelVerdict(bool? CheckerOk, string? CheckerError, bool RunsOk, string? RunError, string[] Outputs);

/// <summary>
/// Independent checks of model files, batched so each tool starts once per batch: onnx.checker full check
/// (Debian's python3 with onnx, tools/fuzz/check_models.py) and a run in ONNX Runtime (this tool's
/// `--ort-check` mode in a child process, restarted if a model crashes it). Both read one JSON string a line: an
/// output name with a newline (the args family's `-o 'a\nb.onnx'`) split a plain line in two.
/// </summary>
public static class ModelChecks
{
    /// <summary>onnx version used, or null when python/onnx is missing (then only ONNX Runtime decides).</summary>
    public static string? CheckerVersion { get; private set; }
    public static string? CheckerUnavailable { get; private set; }

    public static Dictionary<string, ModelVerdict> Verify(IReadOnlyCollection<string> paths, TimeSpan perModel)
    {
        var result = new Dictionary<string, ModelVerdict>(StringComparer.Ordinal);
        if (paths.Count == 0) return result;
        var checker = RunChecker(paths);
        var ort = RunOrt(paths, perModel);
        foreach (var p in paths)
        {
            var (cok, cerr) = checker.TryGetValue(p, out var c) ? c : ((bool?)null, (string?)null);
            var o = ort.TryGetValue(p, out var r) ? r : (false, "not checked", Array.Empty<string>());
            result[p] = new ModelVerdict(cok, cerr, o.Item1, o.Item2, o.Item3);
        }
        return result;
    }

    public static string Python => Environment.GetEnvironmentVariable("ONNXSLIM_FUZZ_PYTHON") ?? (File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");

    private static string Script()
    {
        string here = Path.Combine(AppContext.BaseDirectory, "check_models.py");
        if (File.Exists(here)) return here;
        string? root = FuzzCases.RepoRoot();
        return root is null ? here : Path.Combine(root, "tools", "fuzz", "check_models.py");
    }

    private static Dictionary<string, (bool?, string?)> RunChecker(IReadOnlyCollection<string> paths)
    {
        var result = new Dictionary<string, (bool?, string?)>(StringComparer.Ordinal);
        var info = new ProcessStartInfo(Python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Script());
        Process p;
        try { p = Process.Start(info)!; }
        catch (Exception e) { CheckerUnavailable = $"{Python}: {e.Message}"; return result; }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            var writer = Task.Run(() =>
            {
                try { foreach (var path in paths) p.StandardInput.WriteLine(JsonSerializer.Serialize(path)); p.StandardInput.Close(); }
                catch (IOException) { }
            });
            string? line;
            bool first = true;
            while ((line = p.StandardOutput.ReadLine()) is not null)
            {
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                if (first)
                {
                    first = false;
                    if (r.TryGetProperty("onnx", out var v) && v.ValueKind == JsonValueKind.String) CheckerVersion = v.GetString();
                    else { CheckerUnavailable = "python3 has no onnx module"; }
                    continue;
                }
                result[r.GetProperty("path").GetString()!] = (r.GetProperty("ok").GetBoolean(), r.TryGetProperty("error", out var e) ? e.GetString() : null);
            }
            p.WaitForExit();
            writer.Wait();
            if (first) CheckerUnavailable = $"check_models.py printed nothing: {stderr.Result.Split('\n').FirstOrDefault()}";
        }
        return result;
    }

    /// <summary>Runs each model in ONNX Runtime in a child process of this tool; a model that crashes or hangs the child fails and the child restarts.</summary>
    private static Dictionary<string, (bool, string?, string[])> RunOrt(IReadOnlyCollection<string> paths, TimeSpan perModel)
    {
        var result = new Dictionary<string, (bool, string?, string[])>(StringComparer.Ordinal);
        var queue = new Queue<string>(paths);
        string self = typeof(ModelChecks).Assembly.Location;
        while (queue.Count > 0)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add(self);
            info.ArgumentList.Add("--ort-check");
            info.Environment["DOTNET_GCHeapHardLimit"] = "0x100000000";
            using var p = Process.Start(info)!;
            _ = p.StandardError.ReadToEndAsync();
            while (queue.Count > 0)
            {
                string path = queue.Peek();
                p.StandardInput.WriteLine(JsonSerializer.Serialize(path));
                p.StandardInput.Flush();
                var read = p.StandardOutput.ReadLineAsync();
                if (!read.Wait(perModel) || read.Result is null)
                {
                    queue.Dequeue();
                    result[path] = (false, read.IsCompleted ? "ONNX Runtime check process crashed" : "ONNX Runtime check timed out", []);
                    try { p.Kill(true); } catch (InvalidOperationException) { }
                    break;
                }
                queue.Dequeue();
                using var doc = JsonDocument.Parse(read.Result);
                var r = doc.RootElement;
                result[path] = (r.GetProperty("ok").GetBoolean(), r.TryGetProperty("error", out var e) ? e.GetString() : null,
                    r.TryGetProperty("outputs", out var o) ? [.. o.EnumerateArray().Select(x => x.GetString()!)] : []);
            }
            if (queue.Count == 0) { try { p.StandardInput.Close(); p.WaitForExit(5000); } catch (IOException) { } }
        }
        return result;
    }

    /// <summary>
    /// The child side: reads model paths from stdin (one JSON string a line, as a file name may hold a newline), runs each
    /// once on seeded inputs, prints one JSON line each.
    /// </summary>
    public static int OrtCheckMain()
    {
        string? request;
        while ((request = Console.In.ReadLine()) is not null)
        {
            string path = JsonSerializer.Deserialize<string>(request)!;
            object line;
            try { line = new { ok = true, outputs = RunOnce(path) }; }
            catch (Exception e) { line = new { ok = false, error = $"{e.GetType().Name}: {e.Message.Split('\n')[0]}" }; }
            Console.Out.WriteLine(JsonSerializer.Serialize(line));
            Console.Out.Flush();
        }
        return 0;
    }

    private const long MaxInputElements = 20_000_000;

    private static string[] RunOnce(string path)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        using var session = new InferenceSession(path, options);
        var names = new List<string>();
        var values = new List<OrtValue>();
        var random = new Random(0);
        try
        {
            foreach (var (name, meta) in session.InputMetadata)
            {
                long[] shape = [.. meta.Dimensions.Select((d, i) => d > 0 ? (long)d : 1L)];
                long n = shape.Aggregate(1L, (a, b) => checked(a * b));
                if (n > MaxInputElements) throw new InvalidOperationException($"input '{name}' has {n} elements (over {MaxInputElements})");
                OrtValue value = meta.ElementDataType switch
                {
                    TensorElementType.Float => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, (int)n).Select(_ => (float)random.NextDouble() - 0.5f).ToArray(), shape),
                    TensorElementType.Float16 => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, (int)n).Select(_ => (Float16)(float)random.NextDouble()).ToArray(), shape),
                    TensorElementType.Double => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, (int)n).Select(_ => random.NextDouble()).ToArray(), shape),
                    TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(new long[n], shape),
                    _ => throw new InvalidOperationException($"input '{name}' has type {meta.ElementDataType}"),
                };
                names.Add(name);
                values.Add(value);
            }
            var outputs = session.OutputMetadata.Keys.ToArray();
            if (outputs.Length == 0) throw new InvalidOperationException("the model has no outputs");
            using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var results = session.Run(runOptions, names, values, outputs);
            return outputs;
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>Structural load, in process: parses as a ModelProto with a graph, nodes, outputs, an IR version and an opset.</summary>
    public static string? LoadProblem(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            var proto = ModelProto.Parser.ParseFrom(stream);
            if (proto.Graph is null) return "no graph";
            if (proto.IrVersion <= 0) return $"ir_version {proto.IrVersion}";
            if (proto.OpsetImport.Count == 0) return "no opset_import";
            if (proto.Graph.Node.Count == 0) return "no nodes";
            if (proto.Graph.Output.Count == 0) return "no graph outputs";
            return null;
        }
        catch (Exception e)
        {
            return $"does not parse as an ONNX model: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
        }
    }
}
