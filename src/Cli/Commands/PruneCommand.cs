using System.CommandLine;
using OnnxSlim.Calibration;
using OnnxSlim.GraphIO;
using OnnxSlim.Cli.Reporting;
using OnnxSlim.Pruning;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;

namespace OnnxSlim.Cli.Commands;

/// <summary>The main job: `onnxslim MODEL -o OUT --cr 0.5` (no MODEL: the embedded demo).</summary>
public static class PruneCommand
{
    public static RootCommand Create()
    {
        var model = new Argument<string?>("MODEL") { Description = "ONNX model to prune (omit for the embedded demo model)", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string?>("--output", "-o") { Description = "Where to write the pruned model (default: MODEL.slim.onnx)" };
        var cr = new Option<double>("--cr") { Description = "Fraction of the target removed, in [0, 0.95]", DefaultValueFactory = _ => 0.5 };
        var target = new Option<string>("--target") { Description = "What --cr counts: macs, params, filters, or latency (measured on the CPU provider, one thread, batch 1; cached per model)", DefaultValueFactory = _ => "macs" };
        var criterion = new Option<string>("--criterion") { Description = "Which filters to keep: gem (nuclear norm), l1, l2, random, or refit (needs --calib: the channels the re-fitted next layers miss least; the default with --calib, it also replaces the spectra in the sliming allocation). Default: refit with --calib, else gem" };
        var allocation = new Option<string>("--allocation") { Description = "How many per layer: sliming (spectra) or uniform", DefaultValueFactory = _ => "sliming" };
        var ignore = new Option<string[]>("--ignore") { Description = "Node name or glob whose output channels are left whole (repeatable)", DefaultValueFactory = _ => [] };
        var minKeep = new Option<double?>("--min-keep") { Description = $"Every group keeps at least this fraction (and one channel). Default: {PruneOptions.RefitMinKeepFraction} with --criterion refit (the default with --calib), else {PruneOptions.DefaultMinKeepFraction}" };
        var roundTo = new Option<string>("--round-to") { Description = "Round kept widths to multiples of N; auto = 8 for groups of 64+ channels, 16 for narrower ones on maps of 56²+ (4 with --calib and --target macs), else 1", DefaultValueFactory = _ => "auto" };
        var calib = new Option<string?>("--calib") { Description = "Calibration samples: an .npy (the first input, [N, ...]), an .npz (one array per input name), a folder of images, or a folder of .npy files (a sample or a batch each); folders are read with their subfolders, by path; ranks channels, re-fits layers, and a held-out part validates" };
        var calibSamples = new Option<int?>("--calib-samples") { Description = "Use at most N calibration samples (default: all)" };
        var holdout = new Option<int?>("--holdout") { Description = "Calibration samples held out for validation only (default: an eighth, at most 64)" };
        var checkSamples = new Option<int>("--check-samples") { Description = $"With --calib: fitting samples for the allocation's end-to-end check (each ranked group pruned alone and the outputs compared; groups that damage them more than their error curve predicts keep more); fewer on large models, 0 turns it off", DefaultValueFactory = _ => PruneOptions.DefaultSensitivitySamples };
        var minAgreement = new Option<double?>("--min-agreement") { Description = "Exit 1 and write nothing when the pruned model agrees less with the original (top-1 agreement for classifiers, per position for a Softmax over the last axis of a longer output, else cosine; on held-out samples)" };
        var image = ImageOptions.Create();
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
        var externalData = new Option<bool>("--external-data") { Description = "Write the weights to OUT.data beside the model (ONNX external data); automatic when the model would exceed protobuf's 2 GB" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also print the per-group table, and per-layer fits and memory on stderr" };
        var json = CommonOptions.Json();

        var root = new RootCommand("onnxslim: structured filter pruning (SLIMING) for ONNX convolutional networks")
        {
            model, output, cr, target, criterion, allocation, ignore, minKeep, roundTo, calib, calibSamples, holdout, checkSamples, minAgreement, shape, provider,
            noValidate, noBench, compensation, runs, report, planOut, planIn, seed, force, externalData, verbose, json,
        };
        image.AddTo(root);
        root.SetAction(p =>
        {
            string? path = p.GetValue(model);
            bool demo = path is null;
            if (demo)
            {
                path = ModelFiles.ExtractDemo();
                Console.Error.WriteLine("onnxslim: no MODEL given: pruning the embedded demo (trained Fashion-MNIST ResNet-20, fixtures/README.md)");
            }
            var files = new PruneFiles
            {
                Model = path!,
                Output = p.GetValue(output) ?? (demo ? "demo.slim.onnx" : Path.ChangeExtension(path!, null) + ".slim.onnx"),
                Calib = p.GetValue(calib),
                PlanIn = p.GetValue(planIn),
                PlanOut = p.GetValue(planOut),
                Report = p.GetValue(report),
                Force = p.GetValue(force),
                ExternalData = p.GetValue(externalData),
            };
            string? criterionName = p.GetValue(criterion)?.ToLowerInvariant();
            var options = new PruneOptions
            {
                Ratio = p.GetValue(cr),
                Target = CommonOptions.ParseEnum<BudgetTarget>(p.GetValue(target)!, "--target"),
                Criterion = criterionName is null ? null : CommonOptions.ParseEnum<SelectionCriterion>(criterionName, "--criterion"),
                Allocation = CommonOptions.ParseEnum<AllocationMethod>(p.GetValue(allocation)!, "--allocation"),
                Ignore = p.GetValue(ignore)!,
                RoundTo = ParseRoundTo(p.GetValue(roundTo)!),
                InputShapes = p.GetValue(shape)!,
                Validate = !p.GetValue(noValidate),
                Time = !p.GetValue(noBench),
                Compensation = ParseCompensation(p.GetValue(compensation)!),
                TimedRuns = p.GetValue(runs),
                Seed = p.GetValue(seed),
                HeldOutSamples = p.GetValue(holdout),
                SensitivitySamples = p.GetValue(checkSamples),
                MinAgreement = p.GetValue(minAgreement),
            };
            if (p.GetValue(minKeep) is { } floor) options = options with { MinKeepFraction = floor };
            int maxSamples = p.GetValue(calibSamples) ?? int.MaxValue;
            if (maxSamples < 1) throw new CliError($"--calib-samples must be at least 1, got {maxSamples}");
            if (options.MinAgreement is not null && !options.Validate) throw new CliError("--min-agreement needs validation; drop --no-validate");
            var preprocessing = image.Parse(p);
            if (criterionName == "refit" && files.Calib is null) throw new CliError("--criterion refit needs calibration data (--calib FILE.npy)");
            if (criterionName == "refit" && files.PlanIn is not null) throw new CliError("--criterion refit and --plan-in both choose the channels; give one");
            // The options are checked as a pair before the provider is looked for: a wrong pair is wrong on any machine.
            // The calibration data is not read yet: what criterion refit needs of it is checked above, and again below.
            CommonOptions.CheckOptions(options with
            {
                Provider = CommonOptions.ProviderNamed(p.GetValue(provider)!),
                Criterion = options.Criterion == SelectionCriterion.Refit ? null : options.Criterion,
            });
            files.Check();
            options = options with { Provider = CommonOptions.ParseProvider(p.GetValue(provider)!) };

            bool quiet = p.GetValue(json);
            var progress = ConsoleProgress.ForConsole(quiet);
            using var onnx = progress.Stage("load model", () => ModelFiles.Load(files.Model));
            files.CheckAgainstInputData(onnx.ExternalDataFiles);
            using var calibration = files.Calib is null ? null : progress.Stage("read calibration data", () => LoadCalibration(onnx, files.Calib, maxSamples, preprocessing, options.InputShapes));
            options = options with
            {
                Calibration = calibration,
                KeepNativeMemory = true,
                Plan = files.PlanIn is null ? null : PlanFile.Parse(File.ReadAllText(files.PlanIn), files.PlanIn),
            };
            CommonOptions.CheckOptions(options);

            Action<string>? log = p.GetValue(verbose) ? line => Console.Error.WriteLine($"onnxslim: {line}") : null;
            // The loaded model is handed over (nothing below reads it): its weights need not outlive the rewrite.
            var inputDataFiles = onnx.ExternalDataFiles;
            using var result = progress.Run(report => Pruner.PruneInPlace(onnx, options with { Progress = report, Log = log }));
            var summary = result.Summary;
            summary.Model = files.Model;
            summary.Output = files.Output;
            summary.Before.FileBytes = new FileInfo(files.Model).Length;
            result.Plan.Model = Path.GetFileName(files.Model);

            // Every output is prepared first and committed together: a failure anywhere leaves no file of this run.
            var writer = ModelWriter.For(result.Model, files.Output, p.GetValue(externalData));
            var outputs = new OutputFiles();
            if (writer.DataFileName is not null)
            {
                files.CheckLateDataFile(inputDataFiles);
                outputs.Add(files.DataFile, writer.WriteData);
                summary.OutputData = files.DataFile;
            }
            outputs.Add(files.Output, writer.WriteModel);
            if (files.PlanOut is not null) outputs.AddText(files.PlanOut, result.Plan.ToJson());
            if (files.Report is not null) outputs.AddText(files.Report, ReportWriter.Render(files.Report, summary));
            summary.StageSeconds["write output"] = progress.Stage("write output", () =>
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                outputs.Commit();
                return clock.Elapsed.TotalSeconds;
            });

            if (quiet) Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(summary));
            else SummaryTable.Print(summary, p.GetValue(verbose));
            return ExitCodes.Ok;
        });
        return root;
    }

    /// <summary>The calibration samples as the model's inputs.</summary>
    /// <param name="shapes">The `--shape` values: an image folder takes a dynamic input's size from them.</param>
    private static CalibrationData LoadCalibration(GraphIO.OnnxModel model, string path, int maxSamples, ImagePreprocessing preprocessing, IReadOnlyList<string> shapes)
    {
        // Only the inputs' declarations are read: a session of the inputs alone (each an output too), not of the whole model.
        using var signature = model.ExtractModel(new HashSet<GraphIO.Node>(), model.Graph.RuntimeInputs.Select(i => i.Name), "onnxslim-inputs");
        using var runner = new ModelRunner(signature.ToBytes(), optimize: false);
        // The values' check runs beside the model's analysis; the pruner waits for it before planning (nothing is written before).
        var samples = CalibrationInputs.Load(runner.Inputs, path, maxSamples, preprocessing, checkAlongside: true, InputShapes.Given(runner.Inputs, shapes));
        if (samples.Images < 2) Console.Error.WriteLine($"onnxslim: warning: '{path}' gives a single sample: nothing can be held out for validation");
        return samples;
    }

    private static int ParseRoundTo(string text) =>
        text.Equals("auto", StringComparison.OrdinalIgnoreCase) ? 0
        : int.TryParse(text, out int n) && n >= 1 ? n
        : throw new CliError($"--round-to must be 'auto' or a positive integer, got '{text}'");

    private static CompensationMode ParseCompensation(string text) => text.ToLowerInvariant() switch
    {
        "none" => CompensationMode.None,
        "exact" => CompensationMode.Exact,
        "data-free" => CompensationMode.DataFree,
        _ => throw new CliError($"unknown --compensation '{text}' (expected none, exact or data-free)"),
    };
}
