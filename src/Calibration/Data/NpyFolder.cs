using Microsoft.ML.OnnxRuntime;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// A folder of .npy files, as a data loader dumps them (<c>np.save(f"calib/{i:05}.npy", batch)</c>): each holds one
/// sample without its batch axis, or samples along its first axis, all of one shape. Read in path order (subfolders
/// included, <see cref="FolderFiles"/>) into a temporary float32 file, one file's values in memory at a time, and fed
/// to the model's first input as one .npy would be.
/// </summary>
internal static class NpyFolder
{
    public const string Extension = ".npy";

    /// <summary>Whether <paramref name="file"/> is named as a .npy (any case).</summary>
    public static bool Holds(string file) => Path.GetExtension(file).Equals(Extension, StringComparison.OrdinalIgnoreCase);

    /// <param name="files">The folder's .npy files, by path (<see cref="FolderFiles.Find"/>).</param>
    public static CalibrationData Read(IReadOnlyDictionary<string, NodeMetadata> inputs, string folder, IReadOnlyList<string> files, int maxSamples)
    {
        var (name, meta) = inputs.First();
        if (!NamedTensor.IsFloating(meta.ElementDataType))
            throw new ArgumentException($"a folder of .npy files feeds a floating-point input; the model's input '{name}' is {meta.ElementDataType} (give one .npy or an .npz)");
        var file = SampleFile.CreateTemporary();
        try
        {
            long[]? sample = null;
            long samples = 0;
            foreach (var path in files)
            {
                if (samples == maxSamples) break;
                var header = NpyFile.ReadHeader(path);
                if (!header.IsFloating)
                    throw new ArgumentException($"'{path}' holds dtype {header.Descr}; a folder of .npy files must hold float16, float32 or float64 arrays");
                long[] shape = header.Shape.Length == meta.Dimensions.Length - 1 ? [1, .. header.Shape] : header.Shape;
                long count = CalibrationInputs.CheckShape(name, meta, shape, path, (int)(maxSamples - samples));
                if (sample is null) sample = shape[1..];
                else if (!sample.AsSpan().SequenceEqual(shape.AsSpan(1)))
                    throw new ArgumentException($"'{path}' holds samples of shape {NamedTensor.FormatShape(shape[1..])}, '{files[0]}' of {NamedTensor.FormatShape(sample)}");
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                stream.Position = header.DataOffset;
                NpyFile.ReadFloats(stream, header, count * (header.ElementCount / Math.Max(shape[0], 1)), path, values => file.Append(values));
                samples += count;
            }
            var column = SampleColumn.InFile(name, meta.ElementDataType, [samples, .. sample!], file);
            CalibrationInputs.CheckValues(column, folder, meta.ElementDataType);
            var columns = new List<SampleColumn> { column };
            if (inputs.Count > 1)
                columns.AddRange(InputGenerator.Generate(inputs, InputShapes.Resolve(inputs, [], (int)samples), seed: 0).Skip(1).Select(SampleColumn.InMemory));
            return new CalibrationData(columns, [file]) { Warnings = CalibrationInputs.OthersRandom(inputs, folder) };
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}
