using OnnxSlim.Runtime;

namespace OnnxSlim.Cli;

/// <summary>Runs two models on identical inputs (seeded random or a .npy file) and compares their outputs.</summary>
public static class Agreement
{
    public static OutputComparison Measure(byte[] reference, byte[] candidate, Provider provider, IReadOnlyList<string> shapes, string? inputsFile, int maxSamples = 64)
    {
        using var a = new ModelRunner(reference, provider);
        using var b = new ModelRunner(candidate, provider);
        var inputs = inputsFile is null
            ? InputGenerator.Generate(a.Inputs, InputShapes.Resolve(a.Inputs, shapes, batch: 1), seed: 0)
            : InputsFromFile(a, inputsFile, maxSamples);
        return OutputComparison.Compare(a.Run(inputs), b.Run(inputs));
    }

    /// <summary>The first input from a .npy file (up to maxSamples rows); other inputs seeded random.</summary>
    public static List<NamedTensor> InputsFromFile(ModelRunner runner, string path, int maxSamples)
    {
        var npy = NpyFile.Read(path);
        if (npy.Floats is null) throw new CliError($"'{path}' must hold float32 data for the model's first input");
        var first = runner.Inputs.First();
        if (npy.Shape.Length != first.Value.Dimensions.Length)
            throw new CliError($"'{path}' has shape {NamedTensor.FormatShape(npy.Shape)}, the model's input '{first.Key}' has {first.Value.Dimensions.Length} dims");
        long n = Math.Min(npy.Shape[0], maxSamples);
        var shape = npy.Shape.ToArray();
        shape[0] = n;
        long per = npy.Shape.Skip(1).Aggregate(1L, (x, y) => x * y);
        if (!NamedTensor.IsFloating(first.Value.ElementDataType))
            throw new CliError($"'{path}' holds float32 data, the model's input '{first.Key}' is {first.Value.ElementDataType}");
        var data = NamedTensor.FromFloats(npy.Floats.AsSpan(0, (int)(n * per)), first.Value.ElementDataType);
        var others = InputGenerator.Generate(runner.Inputs, InputShapes.Resolve(runner.Inputs, [], (int)n), seed: 0);
        others[0] = new NamedTensor(first.Key, first.Value.ElementDataType, shape, data);
        return others;
    }

    public static string Describe(OutputComparison c) =>
        $"cosine {c.Cosine:F6}, max abs error {c.MaxAbsError:G4}, max rel error {c.MaxRelError:G4}" +
        (c.Top1Agreement is { } t ? $", top-1 agreement {t:P1}" : "") + (c.AllFinite ? "" : ", NON-FINITE values");
}
