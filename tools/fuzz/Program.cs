using System.Diagnostics;
using System.Text.Json;
using OnnxSlim.Fuzz;

// onnxslim-fuzz: seeded bad-input cases against the built onnxslim CLI. See tools/fuzz/README.md.
if (args.Length > 0 && args[0] == "--ort-check") return ModelChecks.OrtCheckMain();

int cases = 1000, seed = 1, jobs = 2, timeout = 120;
int? only = null;
string? family = null, cli = null, keep = null, jsonOut = null, materialize = null;
bool list = false, deep = true;
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        switch (args[i])
        {
            case "--cases": cases = int.Parse(Next()); break;
            case "--seed": seed = int.Parse(Next()); break;
            case "--family": family = Next(); break;
            case "--cli": cli = Next(); break;
            case "--jobs": jobs = int.Parse(Next()); break;
            case "--keep-failures": keep = Path.GetFullPath(Next()); break;
            case "--timeout": timeout = int.Parse(Next()); break;
            case "--case": only = int.Parse(Next()); break;
            case "--list": list = true; break;
            case "--no-deep": deep = false; break;
            case "--json-out": jsonOut = Next(); break;
            case "--materialize": materialize = Path.GetFullPath(Next()); break;
            case "-h" or "--help":
                Console.WriteLine("""
                    usage: onnxslim-fuzz [--cases N] [--seed S] [--family bytes|structure|args|sidefiles] [--cli PATH/onnxslim.dll]
                                         [--jobs J] [--keep-failures DIR] [--timeout SEC] [--case I] [--list] [--materialize DIR] [--no-deep] [--json-out FILE]
                    Runs N seeded cases against the CLI, prints counts per outcome and family and up to 3 reproducers per
                    failure kind; exits 1 when any failure kind occurred. --case I runs case I of the seed alone; --list
                    prints the cases without running them; --materialize lays their folders out (with repro.sh) without running them; --no-deep skips onnx.checker and ONNX Runtime on outputs.
                    """);
                return 0;
            default: throw new ArgumentException($"unknown argument '{args[i]}'");
        }
    }
    if (family is not null && !FuzzCases.Families.Contains(family)) throw new ArgumentException($"unknown family '{family}' (expected {string.Join(", ", FuzzCases.Families)})");
    if (cases < 1 || jobs < 1 || timeout < 1) throw new ArgumentException("--cases, --jobs and --timeout must be positive");
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine($"onnxslim-fuzz: {e.Message}");
    return 2;
}

string? root = FuzzCases.RepoRoot();
cli ??= root is null ? null : Path.Combine(root, "src", "Cli", "bin", "Release", "net10.0", "onnxslim.dll");
var demo = FuzzCases.DemoModel(root);
var all = only is { } k ? [FuzzCases.One(seed, k, family, demo)] : Enumerable.Range(0, cases).Select(i => FuzzCases.One(seed, i, family, demo)).ToList();
if (list)
{
    foreach (var c in all) Console.WriteLine($"{c}\n    files: {c.FilesLine}{(c.MustRefuse is null ? "" : $"\n    must refuse: {c.MustRefuse}")}");
    return 0;
}
if (materialize is not null)
{
    foreach (var c in all) FuzzRunner.Materialize(c, Path.Combine(materialize, $"{c.Index:D6}-{c.Family}"));
    Console.WriteLine($"{all.Count} cases laid out under {materialize} (not run)");
    return 0;
}
if (cli is null || !File.Exists(cli))
{
    Console.Error.WriteLine($"onnxslim-fuzz: CLI not found ({cli ?? "no repository found"}); build it with `dotnet build src/Cli -c Release` or pass --cli");
    return 2;
}

cli = Path.GetFullPath(cli);
var sw = Stopwatch.StartNew();
Console.Error.WriteLine($"onnxslim-fuzz: {all.Count} cases, seed {seed}, family {family ?? "all"}, {jobs} jobs, timeout {timeout} s, cli {cli}" +
    (demo is null ? " (fixtures/demo_cnn.onnx not found: generated nets only)" : ""));
var results = FuzzRunner.RunAll(all, cli, new RunOptions
{
    Jobs = jobs, Timeout = TimeSpan.FromSeconds(timeout), KeepFailures = keep, DeepChecks = deep,
    Progress = m => Console.Error.WriteLine($"onnxslim-fuzz: {m} ({sw.Elapsed.TotalSeconds:F0} s)"),
});
sw.Stop();

if (jsonOut is not null)
{
    using var w = new StreamWriter(jsonOut);
    foreach (var r in results)
        w.WriteLine(JsonSerializer.Serialize(new
        {
            index = r.Case.Index, family = r.Case.Family, description = r.Case.Description, command = r.Case.CommandLine, files = r.Case.FilesLine,
            exit = r.ExitCode, seconds = Math.Round(r.Seconds, 2), outcome = r.Outcome, failures = r.Failures, stderr = r.Stderr.Length > 2000 ? r.Stderr[..2000] : r.Stderr,
        }));
}
bool failed = Report.Print(results, Console.Out, sw.Elapsed, seed, family, cli);
if (ModelChecks.CheckerUnavailable is { } why) Console.WriteLine($"note: onnx.checker not run ({why}); ONNX Runtime alone judged the outputs");
else if (ModelChecks.CheckerVersion is { } v) Console.WriteLine($"onnx.checker: onnx {v} (full_check on the loaded ModelProto)");
if (keep is not null && failed) Console.WriteLine($"failing cases copied to {keep} (each with repro.sh)");
return failed ? 1 : 0;
