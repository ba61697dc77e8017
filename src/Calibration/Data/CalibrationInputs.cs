using Microsoft.ML.OnnxRuntime;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>Model inputs read from calibration files, samples along the first axis.</summary>
public static class CalibrationInputs
{
    /// <summary>The first input from a .npy file (up to <paramref name="maxSamples"/> rows); other inputs seeded random.</summary>
    /// <exception cref="ArgumentException">The file does not fit the model's first input.</exception>
    public static List<NamedTensor> FromNpy(IReadOnlyDictionary<string, NodeMetadata> inputs, string path, int maxSamples)
    {
        var npy = NpyFile.Read(path);
        if (npy.Floats is null) throw new ArgumentException($"'{path}' must hold float32 data for the model's first input");
        var first = inputs.First();
        if (npy.Shape.Length != first.Value.Dimensions.Length)
            throw new ArgumentException($"'{path}' has shape {NamedTensor.FormatShape(npy.Shape)}, the model's input '{first.Key}' has {first.Value.Dimensions.Length} dims");
        long n = Math.Min(npy.Shape[0], maxSamples);
        var shape = npy.Shape.ToArray();
        shape[0] = n;
        long per = npy.Shape.Skip(1).Aggregate(1L, (x, y) => x * y);
        if (!NamedTensor.IsFloating(first.Value.ElementDataType))
            throw new ArgumentException($"'{path}' holds float32 data, the model's input '{first.Key}' is {first.Value.ElementDataType}");
        var data = NamedTensor.FromFloats(npy.Floats.AsSpan(0, (int)(n * per)), first.Value.ElementDataType);
        var others = InputGenerator.Generate(inputs, InputShapes.Resolve(inputs, [], (int)n), seed: 0);
        others[0] = new NamedTensor(first.Key, first.Value.ElementDataType, shape, data);
        return others;
    }
}
