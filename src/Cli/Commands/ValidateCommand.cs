using System.CommandLine;
using OnnxSlim.Calibration;
using OnnxSlim.GraphIO;
using OnnxSlim.Pruning;
using OnnxSlim.Runtime;
using Spectre.Console;

namespace OnnxSlim.Cli.Commands;

/// <summary>`onnxslim validate ORIGINAL SLIM`: run both on the same inputs and report how closely they agree.</summary>
public static class ValidateCommand
{
    public static Command Create()
    {
        var original = new Argument<string>("ORIGINAL") { Description = "Reference model" };
        var slim = new Argument<string>("SLIM") { Description = "Model to check against it" };
        var inputs = new Option<string?>("--inputs") { Description = "Inputs for the first model input (.npy, float32 [N,...]); default: seeded random" };
        var minCosine = new Option<double>("--min-cosine") { Description = "Fail (exit 1) when output cosine similarity is below this", DefaultValueFactory = _ => 0.0 };
        var minTop1 = new Option<double>("--min-top1") { Description = "Fail (exit 1) when top-1 agreement is below this (classifiers; per position for a Softmax over the last axis of a longer output)", DefaultValueFactory = _ => 0.0 };
        var shape = CommonOptions.Shape();
        var provider = CommonOptions.Provider();
        var json = CommonOptions.Json();
        var cmd = new Command("validate", "Compare two models' outputs on the same inputs (exit 1 when they disagree)")
        {
            original, slim, inputs, minCosine, minTop1, shape, provider, json,
        };
        cmd.SetAction(p =>
        {
            string a = CommonOptions.RequireFile(p.GetValue(original)!, "model");
            string b = CommonOptions.RequireFile(p.GetValue(slim)!, "model");
            var cmp = Measure(a, b, CommonOptions.ParseProvider(p.GetValue(provider)!), p.GetValue(shape)!, p.GetValue(inputs), out var before);
            bool ok = cmp.AllFinite && cmp.Compared > 0 && cmp.Cosine >= p.GetValue(minCosine) &&
                      (cmp.Top1Agreement ?? 1.0) >= p.GetValue(minTop1);
            if (p.GetValue(json))
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
                {
                    ok, cosine = cmp.Cosine, max_abs_error = cmp.MaxAbsError, max_rel_error = cmp.MaxRelError,
                    top1_agreement = cmp.Top1Agreement, top1_per_position = cmp.Top1Agreement is null ? (bool?)null : cmp.Top1PerPosition, all_finite = cmp.AllFinite, outputs_compared = cmp.Compared,
                    not_compared = cmp.NotCompared, values_compared = before?.Compared, data_dependent_outputs = before?.Outputs,
                }));
            else
                AnsiConsole.WriteLine(Describe(cmp, before) + (ok ? "  [ok]" : "  [FAILED]"));
            if (!ok)
            {
                string why = !cmp.AllFinite ? "outputs contain NaN or Inf" : cmp.Compared == 0 ? $"no {(before is null ? "output" : "value before the data-dependent part")} has the same name and shape in both models" : "outputs disagree beyond the given tolerance";
                Console.Error.WriteLine($"onnxslim: validation failed: {why}");
                return ExitCodes.ValidationFailed;
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>
    /// Both models on identical inputs: seeded random, or the first input from a .npy file (up to 64 samples). A model whose
    /// outputs have data-dependent sizes (a detector after NMS) is compared on the layer outputs before that part
    /// (<paramref name="before"/>, see <see cref="DataDependentPart"/>), running only what computes them, as the prune
    /// command validates: two detectors keep different numbers of boxes on the same input.
    /// </summary>
    private static OutputComparison Measure(string referencePath, string candidatePath, Provider provider, IReadOnlyList<string> shapes,
        string? inputsFile, out DataDependentPart? before)
    {
        using var reference = OnnxModel.Load(referencePath);
        using var candidate = OnnxModel.Load(candidatePath);
        before = DataDependentPart.Find(reference.Graph);
        var values = before?.Compared.Where(v => candidate.Graph.Producer(v) is not null).ToList();
        if (values is { Count: 0 }) (before, values) = (null, null);
        using var a = Runner(reference, referencePath, values, provider);
        using var b = Runner(candidate, candidatePath, values, provider);
        var inputs = inputsFile is null
            ? InputGenerator.Generate(a.Inputs, InputShapes.Resolve(a.Inputs, shapes, batch: 1), seed: 0)
            : CalibrationInputs.FromNpy(a.Inputs, inputsFile, maxSamples: 64);
        return OutputComparison.Compare(a.Run(inputs), b.Run(inputs), top1: before is null, ClassAxes.Find(reference));
    }

    /// <summary>A session of the whole model, or of the part that computes <paramref name="values"/>; external data is pulled inline either way.</summary>
    private static ModelRunner Runner(OnnxModel model, string path, IReadOnlyList<string>? values, Provider provider)
    {
        if (values is null) return new ModelRunner(ModelFiles.RuntimeBytes(model, path), provider);
        // The part is cut from the model in memory: a session made from its bytes cannot find files beside the model.
        if (model.HasExternalData) model.InlineExternalData();
        return ModelRunner.ForValues(model, values, provider);
    }

    private static string Over(DataDependentPart before, int compared)
    {
        var (values, outputsLeft) = DataDependentPart.Wording(before.Compared, before.SourceOps, before.Outputs, compared);
        return $" over {compared} {values}, {outputsLeft}";
    }

    private static string Describe(OutputComparison c, DataDependentPart? before) =>
        (c.Compared == 0 ? "not measured" : $"cosine {c.Cosine:F6}, max abs error {c.MaxAbsError:G4}, max rel error {c.MaxRelError:G4}") +
        (before is null ? "" : Over(before, c.Compared)) +
        (c.Top1Agreement is { } t ? $", top-1 agreement {t:P1}{(c.Top1PerPosition ? " per position" : "")}" : "") + (c.AllFinite ? "" : ", NON-FINITE values") +
        (c.NotCompared.Count == 0 ? "" : $"; not compared (original vs slim shape): {string.Join(", ", c.NotCompared)}");
}
