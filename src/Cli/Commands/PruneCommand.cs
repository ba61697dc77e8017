using System.CommandLine;
using OnnxSlim.Cli.Pipeline;
using OnnxSlim.Cli.Reporting;
using OnnxSlim.Spectral;
using Spectre.Console;

namespace OnnxSlim.Cli.Commands;

/// <summary>The main job: `onnxslim MODEL -o OUT --cr 0.5` (no MODEL: the embedded demo).</summary>
public static class PruneCommand
{
    public static RootCommand Create()
    {
        var model = new Argument<string?>("MODEL") { Description = "ONNX model to prune (omit for the embedded demo model)", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string?>("--output", "-o") { Description = "Where to write the pruned model (default: MODEL.slim.onnx)" };
        var cr = new Option<double>("--cr") { Description = "Fraction of the target removed, in [0, 0.95]", DefaultValueFactory = _ => 0.5 };
        var target = new Option<string>("--target") { Description = "What --cr counts: macs, params or filters", DefaultValueFactory = _ => "macs" };
        var criterion = new Option<string>("--criterion") { Description = "Which filters to keep: gem (nuclear norm), l1, l2, random, or refit (needs --calib: the channels the re-fitted next layers miss least; the default with --calib, it also replaces the spectra in the sliming allocation). Default: refit with --calib, else gem" };
        var allocation = new Option<string>("--allocation") { Description = "How many per layer: sliming (spectra) or uniform", DefaultValueFactory = _ => "sliming" };
        var ignore = new Option<string[]>("--ignore") { Description = "Node name or glob whose output channels are left whole (repeatable)", DefaultValueFactory = _ => [] };
        var minKeep = new Option<double>("--min-keep") { Description = "Every group keeps at least this fraction (and one channel)", DefaultValueFactory = _ => 0.05 };
        var roundTo = new Option<string>("--round-to") { Description = "Round kept widths to multiples of N; auto = 8 for groups of 64+ channels", DefaultValueFactory = _ => "auto" };
        var calib = new Option<string?>("--calib") { Description = "Calibration inputs (.npy, float32 [N, ...]) for reconstruction and validation" };
        var shape = CommonOptions.Shape();
        var provider = CommonOptions.Provider();
        var noValidate = new Option<bool>("--no-validate") { Description = "Skip running the result on ONNX Runtime (no agreement, no timing)" };
        var noBench = new Option<bool>("--no-bench") { Description = "Validate but do not time" };
        var compensation = new Option<string>("--compensation") { Description = "Fold removed filters into kept ones: none, exact (proven multiples only) or data-free (least squares + BatchNorm statistics)", DefaultValueFactory = _ => "data-free" };
        var runs = new Option<int>("--runs") { Description = "Timed runs per model and batch size", DefaultValueFactory = _ => 20 };
        var report = new Option<string?>("--report") { Description = "Write a report: FILE.json or FILE.html" };
        var planOut = new Option<string?>("--plan-out") { Description = "Write the per-group keep plan (JSON)" };
        var planIn = new Option<string?>("--plan-in") { Description = "Apply a keep plan instead of planning" };
        var seed = new Option<int>("--seed") { Description = "Seed for random inputs and the random criterion", DefaultValueFactory = _ => 0 };
        var force = new Option<bool>("--force") { Description = "Allow -o to overwrite the input model" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also print the per-group table" };
        var json = CommonOptions.Json();

        var root = new RootCommand("onnxslim: structured filter pruning (SLIMING) for ONNX convolutional networks")
        {
            model, output, cr, target, criterion, allocation, ignore, minKeep, roundTo, calib, shape, provider,
            noValidate, noBench, compensation, runs, report, planOut, planIn, seed, force, verbose, json,
        };
        root.SetAction(p =>
        {
            string? path = p.GetValue(model);
            bool demo = path is null;
            if (demo)
            {
                path = ModelFiles.ExtractDemo();
                Console.Error.WriteLine("onnxslim: no MODEL given: pruning the embedded demo (trained Fashion-MNIST ResNet-20, fixtures/README.md)");
            }
            string outPath = p.GetValue(output) ?? (demo ? "demo.slim.onnx" : Path.ChangeExtension(path!, null) + ".slim.onnx");
            var request = new PruneRequest
            {
                ModelPath = path!,
                OutputPath = outPath,
                Cr = p.GetValue(cr),
                Target = ParseEnum<BudgetTarget>(p.GetValue(target)!, "--target"),
                Criterion = p.GetValue(criterion)?.ToLowerInvariant() ?? (p.GetValue(calib) is null || p.GetValue(planIn) is not null ? "gem" : PruneRequest.RefitCriterion),
                Allocation = ParseEnum<AllocationMethod>(p.GetValue(allocation)!, "--allocation"),
                Ignore = p.GetValue(ignore)!,
                MinKeepFraction = p.GetValue(minKeep),
                RoundTo = PruneRequest.ParseRoundTo(p.GetValue(roundTo)!),
                Calib = p.GetValue(calib),
                Shapes = p.GetValue(shape)!,
                Provider = CommonOptions.ParseProvider(p.GetValue(provider)!),
                Validate = !p.GetValue(noValidate),
                Bench = !p.GetValue(noBench),
                Compensation = p.GetValue(compensation)!.ToLowerInvariant(),
                Runs = p.GetValue(runs),
                Report = p.GetValue(report),
                PlanOut = p.GetValue(planOut),
                PlanIn = p.GetValue(planIn),
                Seed = p.GetValue(seed),
                Force = p.GetValue(force),
                Verbose = p.GetValue(verbose),
            };
            var summary = new PrunePipeline(request, p.GetValue(json) ? new Stages(false) : Stages.ForConsole()).Run();
            if (p.GetValue(json)) Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(summary));
            else SummaryTable.Print(summary, request.Verbose);
            return ExitCodes.Ok;
        });
        return root;
    }

    private static T ParseEnum<T>(string value, string option) where T : struct, Enum =>
        Enum.TryParse<T>(value, ignoreCase: true, out var v) && Enum.IsDefined(v)
            ? v
            : throw new CliError($"unknown {option} '{value}' (expected {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))})");
}
