using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace OnnxSlim.Fuzz;

/// <summary>Outcome kinds. The first three are acceptable; every other kind is a failure.</summary>
public static class Outcome
{
    public const string Ok = "ok-0", Refused = "refused-2", Validation = "validation-1";
    public const string Internal = "internal-error", MultiLine = "multi-line-error", RawMessage = "raw-dotnet-message", Hang = "hang",
        Resource = "resource-limit", FileLeft = "file-left-after-failure", InputModified = "input-modified",
        BrokenOutput = "broken-output-exit-0", AcceptedInvalid = "accepted-invalid", Crash = "crash";

    public static readonly string[] Acceptable = [Ok, Refused, Validation];
    public static readonly string[] Failures = [Internal, MultiLine, RawMessage, Hang, Resource, FileLeft, InputModified, BrokenOutput, AcceptedInvalid, Crash];

    public static string Explain(string kind) => kind switch
    {
        Ok => "exit 0, outputs valid (onnx.checker + ONNX Runtime when the input passes both)",
        Refused => "exit 2 with one 'onnxslim: error:' line",
        Validation => "exit 1 (validation failed)",
        Internal => "exit 3, a stack trace, or 'Unhandled exception'",
        MultiLine => "exit 1/2 whose error is not one 'onnxslim: error:' line (stage progress lines aside)",
        RawMessage => "exit 1/2 with a raw .NET exception message (e.g. \"(Parameter 'path')\")",
        Hang => "did not finish within the timeout",
        Resource => "killed: resident memory over the limit",
        FileLeft => "a non-zero exit left a new file (or changed an existing one) in the case folder",
        InputModified => "an input or side file changed (also on exit 0)",
        BrokenOutput => "exit 0 but an output is missing, unreadable, fails onnx.checker or ONNX Runtime",
        AcceptedInvalid => "exit 0 on input that is certainly invalid (enum given as a number, bytes that are no protobuf)",
        Crash => "another exit code (signal, abort)",
        _ => kind,
    };
}

public sealed class RunOptions
{
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);
    public long MemoryLimitBytes { get; init; } = 6L << 30;
    public int Jobs { get; init; } = 2;
    /// <summary>Where case folders are made; a fresh temp folder when null.</summary>
    public string? WorkDir { get; init; }
    /// <summary>Copy failing cases' folders here (with a repro.sh).</summary>
    public string? KeepFailures { get; init; }
    /// <summary>Check outputs with onnx.checker and ONNX Runtime (the slow part; off only for quick smoke tests).</summary>
    public bool DeepChecks { get; init; } = true;
    public Action<string>? Progress { get; init; }
}

/// <summary>A run of one case and how it was classified.</summary>
public sealed class CaseResult
{
    public required FuzzCase Case { get; init; }
    public required string Dir { get; init; }
    public int ExitCode { get; set; }
    public bool TimedOut { get; set; }
    public bool MemoryKilled { get; set; }
    public double Seconds { get; set; }
    public string Stdout { get; set; } = "";
    public string Stderr { get; set; } = "";
    /// <summary>Failure kinds with a detail each (a case can have several).</summary>
    public SortedDictionary<string, string> Failures { get; } = new(StringComparer.Ordinal);
    /// <summary>ok-0, refused-2 or validation-1 when there is no failure; otherwise the first failure kind.</summary>
    public string Outcome => Failures.Count == 0 ? Base : Failures.Keys.First();
    public string Base { get; set; } = Fuzz.Outcome.Crash;
    internal List<(string Full, string Rel)> ModelOutputs { get; } = [];
    internal string? InputBundle { get; set; }

    public void Fail(string kind, string detail)
    {
        if (!Failures.ContainsKey(kind)) Failures[kind] = detail;
    }

    public string ErrorLine => Stderr.Split('\n').Select(l => l.TrimEnd('\r')).LastOrDefault(l => l.StartsWith("onnxslim: error:") || l.Length > 0 && !FuzzRunner.IsProgress(l)) ?? "";
}

/// <summary>Runs cases against the built CLI, each in its own folder, and classifies the outcomes.</summary>
public static partial class FuzzRunner
{
    /// <summary>Runs one case (its output checks included): for tests.</summary>
    public static CaseResult Run(FuzzCase c, string cliPath, RunOptions? options = null) => RunAll([c], cliPath, options)[0];

    public static List<CaseResult> RunAll(IReadOnlyList<FuzzCase> cases, string cliPath, RunOptions? options = null)
    {
        options ??= new RunOptions();
        cliPath = Path.GetFullPath(cliPath);
        if (!File.Exists(cliPath)) throw new FileNotFoundException($"CLI not found: {cliPath} (build it: dotnet build src/Cli -c Release)");
        string work = options.WorkDir ?? Path.Combine(Path.GetTempPath(), $"onnxslim-fuzz-{Environment.ProcessId}-{DateTime.UtcNow:HHmmss}");
        Directory.CreateDirectory(work);
        var results = new CaseResult[cases.Count];
        int done = 0;
        Parallel.For(0, cases.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Jobs) }, i =>
        {
            results[i] = RunCase(cases[i], cliPath, Path.Combine(work, "cases", $"{cases[i].Index:D6}"), options);
            int d = Interlocked.Increment(ref done);
            if (d % 50 == 0 || d == cases.Count) options.Progress?.Invoke($"{d}/{cases.Count} cases run");
        });
        if (options.DeepChecks) DeepCheck(results, work, options);
        foreach (var r in results)
        {
            if (r.Failures.Count > 0 && options.KeepFailures is { } keep) KeepCase(r, keep, cliPath);
        }
        try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        return [.. results];
    }

    // ---- one case --------------------------------------------------------------------------------------------

    private sealed record Entry(string Kind, string? Hash);

    private static CaseResult RunCase(FuzzCase c, string cliPath, string dir, RunOptions options)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        Directory.CreateDirectory(dir);
        Materialize(c, dir);
        var result = new CaseResult { Case = c, Dir = dir };
        var shape = CommandShape.Parse(c.Args);
        var before = Snapshot(dir);
        var inputHashes = c.Files.Where(f => f.Role == FileRole.Input && !f.IsDirectory).ToDictionary(f => f.Path, f => Hash(Path.Combine(dir, f.Path)));
        string? forced = shape.FlagOn("--force") && shape.Last("-o") is { } o ? RealPath(Path.Combine(dir, o)) : null;

        Execute(c, cliPath, dir, options, result);

        // Inputs: same bytes after the run, whatever the exit code (the -o target of --force aside).
        foreach (var (path, hash) in inputHashes)
        {
            string full = Path.Combine(dir, path);
            if (forced is not null && RealPath(full) == forced) continue;
            string? now = Hash(full);
            if (now != hash) result.Fail(Outcome.InputModified, now is null ? $"{path} is gone" : $"{path} changed");
        }
        if (result.TimedOut || result.MemoryKilled) return result;

        var after = Snapshot(dir);
        if (result.ExitCode != 0)
        {
            var inputs = new HashSet<string>(inputHashes.Keys);
            var left = after.Keys.Where(k => !before.ContainsKey(k)).Order().ToList();
            var changed = after.Keys.Where(k => before.TryGetValue(k, out var b) && b != after[k] && !inputs.Contains(k)).ToList();
            if (left.Count > 0) result.Fail(Outcome.FileLeft, $"new after exit {result.ExitCode}: {string.Join(", ", left.Take(4))}");
            else if (changed.Count > 0) result.Fail(Outcome.FileLeft, $"changed after exit {result.ExitCode}: {string.Join(", ", changed.Take(4))}");
        }
        else CheckSuccess(c, shape, dir, result);
        return result;
    }

    /// <summary>Lays a case's files out in <paramref name="dir"/> (created), with a repro.sh when <paramref name="cliPath"/> is given.</summary>
    public static void Materialize(FuzzCase c, string dir, string? cliPath = null)
    {
        Directory.CreateDirectory(dir);
        Materialize(c, dir);
        File.WriteAllText(Path.Combine(dir, "repro.sh"),
            $"#!/bin/sh\n# {c.Family}: {c.Description.Replace('\n', ' ')}\ncd \"$(dirname \"$0\")\" && dotnet {FuzzCase.Quote(cliPath ?? "onnxslim.dll")} {string.Join(" ", c.Args.Select(FuzzCase.Quote))}\n");
    }

    private static void Materialize(FuzzCase c, string dir)
    {
        foreach (var f in c.Files.OrderBy(f => f.IsDirectory ? 0 : f.LinkTarget is null ? 1 : 2))
        {
            string full = Path.Combine(dir, f.Path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            if (f.IsDirectory) Directory.CreateDirectory(full);
            else if (f.LinkTarget is not null) File.CreateSymbolicLink(full, f.LinkTarget);
            else File.WriteAllBytes(full, f.Content!);
        }
    }

    private static void Execute(FuzzCase c, string cliPath, string dir, RunOptions options, CaseResult result)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(cliPath);
        foreach (var a in c.Args) info.ArgumentList.Add(a);
        info.Environment["COLUMNS"] = "200";
        info.Environment.Remove("ONNXSLIM_DEBUG");
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        // A managed allocation past this throws (OutOfMemoryException) instead of taking the machine's memory.
        info.Environment["DOTNET_GCHeapHardLimit"] = $"0x{options.MemoryLimitBytes:X}";
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(info)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        while (!p.WaitForExit(100))
        {
            if (sw.Elapsed > options.Timeout) { result.TimedOut = true; break; }
            if (Rss(p.Id) > options.MemoryLimitBytes) { result.MemoryKilled = true; break; }
        }
        if (result.TimedOut || result.MemoryKilled)
        {
            try { p.Kill(true); } catch (InvalidOperationException) { }
            p.WaitForExit();
        }
        result.Seconds = sw.Elapsed.TotalSeconds;
        result.Stdout = stdout.Result;
        result.Stderr = stderr.Result;
        result.ExitCode = result.TimedOut || result.MemoryKilled ? -1 : p.ExitCode;
        Classify(c, result);
    }

    private static long Rss(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:")) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return 0;
    }

    [GeneratedRegex(@"^\s+at \S.*\)|Unhandled exception|^\s*--- End of (inner exception )?stack trace", RegexOptions.Multiline)]
    private static partial Regex StackTrace();

    [GeneratedRegex(@"^onnxslim: (?!error:).* \(\d+\.\d+ s\)$")]
    private static partial Regex ProgressLine();

    public static bool IsProgress(string line) => ProgressLine().IsMatch(line) || line.StartsWith("onnxslim: no MODEL given");

    /// <summary>Fragments of .NET's own exception messages: the user should get onnxslim's words, not the runtime's.</summary>
    private static readonly string[] RawFragments =
    [
        "(Parameter '", "was not in a correct format", "The input string '", "Value was either too large or too small",
        "Index was outside the bounds", "Object reference not set", "Arithmetic operation resulted in an overflow", "Sequence contains no",
        "Could not find a part of the path", "Specified argument was out of the range", "Non-negative number required", "Unable to cast object",
        "The given key", "An item with the same key", "Nullable object must have a value", "The value cannot be an empty string",
        "Offset and length were out of bounds", "Destination array was not long enough", "Exception of type '", "Array dimensions exceeded",
        "Must specify valid information for parsing", "Unable to read beyond the end of the stream", "Attempted to divide by zero",
        "could not be converted to System.", "System.Collections.Generic.",
    ];

    private static void Classify(FuzzCase c, CaseResult r)
    {
        if (r.TimedOut) { r.Fail(Outcome.Hang, $"no exit within the timeout ({r.Seconds:F0} s)"); return; }
        if (r.MemoryKilled) { r.Fail(Outcome.Resource, "resident memory over the limit"); return; }
        string all = r.Stdout + "\n" + r.Stderr;
        var lines = r.Stderr.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0 && !IsProgress(l)).ToList();
        string first = lines.FirstOrDefault(l => l.StartsWith("onnxslim: error:")) ?? lines.FirstOrDefault() ?? "";
        if (r.ExitCode == 3 || StackTrace().IsMatch(all))
            r.Fail(Outcome.Internal, first.Length > 0 ? Trim(first) : $"exit {r.ExitCode}, stack trace on output");
        switch (r.ExitCode)
        {
            case 0: r.Base = Outcome.Ok; break;
            case 1:
                r.Base = Outcome.Validation;
                break;
            case 2:
                r.Base = Outcome.Refused;
                if (lines.Count != 1 || !lines[0].StartsWith("onnxslim: error:"))
                    r.Fail(Outcome.MultiLine, lines.Count == 0 ? "exit 2 with nothing on stderr" : $"{lines.Count} lines: {Trim(string.Join(" | ", lines.Take(3)))}");
                break;
            case 3: break;
            default: r.Fail(Outcome.Crash, $"exit code {r.ExitCode}: {Trim(first)}"); break;
        }
        if (r.ExitCode is 1 or 2 && RawFragments.FirstOrDefault(f => first.Contains(f, StringComparison.Ordinal)) is { } frag)
            r.Fail(Outcome.RawMessage, Trim(first));
    }

    private static string Trim(string s) => s.Length > 220 ? s[..220] + "…" : s;

    /// <summary>Exit 0: what the case must refuse, the outputs it must have written, JSON on stdout.</summary>
    private static void CheckSuccess(FuzzCase c, CommandShape shape, string dir, CaseResult r)
    {
        if (c.MustRefuse is not null) r.Fail(Outcome.AcceptedInvalid, c.MustRefuse);
        foreach (var (rel, kind) in shape.ExpectedOutputs())
        {
            string full = Path.Combine(dir, rel);
            if (!File.Exists(full)) { r.Fail(Outcome.BrokenOutput, $"exit 0 but {kind} output '{rel}' is missing"); continue; }
            string? problem = kind switch
            {
                OutputKind.Model => ModelChecks.LoadProblem(full),
                OutputKind.Plan => PlanProblem(full),
                OutputKind.JsonReport => JsonProblem(File.ReadAllText(full)),
                OutputKind.HtmlReport => Contains(full, "<html", "<!doctype") ? null : "not HTML",
                OutputKind.Svg => Contains(full, "<svg") ? null : "not SVG",
                _ => null,
            };
            if (problem is not null) r.Fail(Outcome.BrokenOutput, $"{kind} output '{rel}': {problem}");
            else if (kind == OutputKind.Model) r.ModelOutputs.Add((full, rel));
        }
        if (shape.FlagOn("--json") && !shape.Info && JsonProblem(r.Stdout) is { } j) r.Fail(Outcome.BrokenOutput, $"--json but stdout is not JSON: {j}");
        if (r.ModelOutputs.Count > 0 && shape.PrimaryModel is { } model) r.InputBundle = InputBundle(c, model);
    }

    private static bool Contains(string path, params string[] needles)
    {
        string text = File.ReadAllText(path);
        return needles.Any(n => text.Contains(n, StringComparison.OrdinalIgnoreCase));
    }

    private static string? JsonProblem(string text)
    {
        try { using var _ = JsonDocument.Parse(text); return null; }
        catch (JsonException e) { return e.Message.Split('\n')[0]; }
    }

    private static string? PlanProblem(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var f) || f.GetString() != "onnxslim-plan/1") return "not an onnxslim-plan/1 object";
            if (!root.TryGetProperty("groups", out var g) || g.ValueKind != JsonValueKind.Array) return "no groups array";
            return null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return "not JSON: " + e.Message.Split('\n')[0]; }
    }

    /// <summary>The input model as given (links followed within the case) with its external-data files, for the validity check.</summary>
    private static string? InputBundle(FuzzCase c, string model)
    {
        string norm(string p) => Path.GetFullPath(Path.Combine("/case", p));
        var byPath = c.Files.ToDictionary(f => norm(f.Path));
        string key = norm(model);
        for (int hop = 0; hop < 8 && byPath.TryGetValue(key, out var f) && f.LinkTarget is not null; hop++)
            key = norm(Path.Combine(Path.GetDirectoryName(f.Path) ?? "", f.LinkTarget));
        if (!byPath.TryGetValue(key, out var file) || file.Content is null) return null;
        return key;
    }

    // ---- output checks (batched) -------------------------------------------------------------------------------

    private static void DeepCheck(CaseResult[] results, string work, RunOptions options)
    {
        var pending = results.Where(r => r.ModelOutputs.Count > 0).ToList();
        if (pending.Count == 0) return;
        // Input bundles: each distinct (model bytes + external-data files) once, in its own folder.
        var bundles = new Dictionary<CaseResult, string>();
        var byHash = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var r in pending.Where(r => r.InputBundle is not null))
        {
            var c = r.Case;
            string norm(string p) => Path.GetFullPath(Path.Combine("/case", p));
            var model = c.Files.First(f => norm(f.Path) == r.InputBundle);
            var side = c.Files.Where(f => f.Content is not null && f.Role == FileRole.Input && f.Path.EndsWith(".bin", StringComparison.Ordinal)).OrderBy(f => f.Path).ToList();
            using var sha = SHA256.Create();
            foreach (var part in side.Prepend(model)) { var name = System.Text.Encoding.UTF8.GetBytes(part.Path); sha.TransformBlock(name, 0, name.Length, null, 0); sha.TransformBlock(part.Content!, 0, part.Content!.Length, null, 0); }
            sha.TransformFinalBlock([], 0, 0);
            string h = Convert.ToHexString(sha.Hash!)[..16];
            if (!byHash.TryGetValue(h, out var path))
            {
                string bdir = Path.Combine(work, "inputs", h);
                Directory.CreateDirectory(bdir);
                path = Path.Combine(bdir, "model.onnx");
                File.WriteAllBytes(path, model.Content!);
                foreach (var s in side) File.WriteAllBytes(Path.Combine(bdir, s.Path), s.Content!);
                byHash[h] = path;
            }
            bundles[r] = path;
        }
        var all = byHash.Values.Concat(pending.SelectMany(r => r.ModelOutputs.Select(o => o.Full))).Distinct().ToList();
        options.Progress?.Invoke($"checking {all.Count} models with onnx.checker and ONNX Runtime");
        var verdicts = ModelChecks.Verify(all, TimeSpan.FromSeconds(60));
        foreach (var r in pending)
        {
            if (!bundles.TryGetValue(r, out var input)) continue;
            var vin = verdicts[input];
            bool inputValid = vin.CheckerOk != false && vin.RunsOk;
            if (!inputValid) continue;
            foreach (var (full, rel) in r.ModelOutputs)
            {
                var v = verdicts[full];
                if (v.CheckerOk == false) r.Fail(Outcome.BrokenOutput, $"'{rel}' fails onnx.checker (the input passes): {v.CheckerError}");
                else if (!v.RunsOk) r.Fail(Outcome.BrokenOutput, $"'{rel}' does not run in ONNX Runtime (the input does): {v.RunError}");
                else if (!v.Outputs.Order().SequenceEqual(vin.Outputs.Order()))
                    r.Fail(Outcome.BrokenOutput, $"'{rel}' has outputs [{string.Join(", ", v.Outputs)}], the input [{string.Join(", ", vin.Outputs)}]");
            }
        }
    }

    // ---- files ----------------------------------------------------------------------------------------------

    private static Dictionary<string, Entry> Snapshot(string dir)
    {
        var result = new Dictionary<string, Entry>(StringComparer.Ordinal);
        void Walk(string d)
        {
            foreach (var e in new DirectoryInfo(d).EnumerateFileSystemInfos())
            {
                string rel = Path.GetRelativePath(dir, e.FullName);
                if (e.LinkTarget is not null) result[rel] = new Entry("link", e.LinkTarget);
                else if (e is DirectoryInfo di) { result[rel] = new Entry("dir", null); Walk(di.FullName); }
                else result[rel] = new Entry("file", Hash(e.FullName));
            }
        }
        Walk(dir);
        return result;
    }

    private static string? Hash(string path)
    {
        try
        {
            if (!File.Exists(path)) return Directory.Exists(path) ? "dir" : null;
            using var s = File.OpenRead(path);
            return Convert.ToHexString(SHA256.HashData(s));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "unreadable"; }
    }

    private static string? RealPath(string path)
    {
        try
        {
            var info = new FileInfo(path);
            var target = info.ResolveLinkTarget(returnFinalTarget: true);
            return (target?.FullName ?? info.FullName);
        }
        catch (IOException) { return Path.GetFullPath(path); }
    }

    private static void KeepCase(CaseResult r, string keep, string cliPath)
    {
        string dest = Path.Combine(keep, $"{r.Case.Index:D6}-{r.Case.Family}-{r.Outcome}");
        if (Directory.Exists(dest)) Directory.Delete(dest, true);
        Directory.CreateDirectory(dest);
        // The case as laid before the run (not what the run left), plus how to repeat it.
        Materialize(r.Case, dest);
        File.WriteAllText(Path.Combine(dest, "repro.sh"),
            $"#!/bin/sh\n# {r.Case.Family}: {r.Case.Description}\n# outcome: {string.Join("; ", r.Failures.Select(f => $"{f.Key}: {f.Value}"))}\n" +
            $"cd \"$(dirname \"$0\")\" && dotnet {FuzzCase.Quote(cliPath)} {string.Join(" ", r.Case.Args.Select(FuzzCase.Quote))}\n");
    }
}
