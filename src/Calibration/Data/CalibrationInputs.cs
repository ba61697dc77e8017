using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// Model inputs read from calibration data, samples along the first axis: an .npy (the model's first input;
/// other inputs seeded random), an .npz (one array per input name) or a folder of images (see
/// <see cref="ImagePreprocessing"/>). Everything is checked against the model's inputs: a file that does not
/// fit is an <see cref="ArgumentException"/> with one line saying why.
/// </summary>
public static class CalibrationInputs
{
    /// <summary>Reads <paramref name="path"/> by its kind: a folder (images, or .npy files), .npz, or .npy. The caller disposes the result.</summary>
    /// <param name="checkAlongside">Let the check of a float .npy's values (every sample read back) run beside the caller
    /// instead of before returning: the result's reads wait for it and rethrow its refusal (<see cref="CalibrationData.WaitForCheck"/>).
    /// PP-OCRv4 det's 32 pages are 157 MB, 0.3 s to read warm and 2.7 s cold, which the model's analysis can cover.</param>
    /// <param name="shapes">Concrete input shapes the user gave (`--shape`): an image folder takes its size from them where the
    /// model's input size is dynamic (see <see cref="ImageFolder.Read"/>).</param>
    public static CalibrationData Load(IReadOnlyDictionary<string, NodeMetadata> inputs, string path, int maxSamples, ImagePreprocessing? images = null,
        bool checkAlongside = false, IReadOnlyDictionary<string, long[]>? shapes = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (maxSamples < 1) throw new ArgumentException($"at least one calibration sample must be used, got {maxSamples}", nameof(maxSamples));
        // The calibrated path probes the model on one sample and splits the samples where it likes (held out, fitting,
        // batches): a first dim fixed above 1 (a fixed batch, or no batch axis, as a detector taking one C×H×W image)
        // failed in ONNX Runtime after the data was read, or would have split an image's channels as samples.
        if (inputs.Count > 0 && inputs.First() is var (first, meta) && meta.Dimensions is [> 1, ..])
            throw new ArgumentException($"the model's input '{first}' has dims {FormatDims(meta.Dimensions)}: calibration needs a batch axis first, dynamic or 1 (export the model with a dynamic batch)");
        if (Directory.Exists(path))
        {
            // One walk of the folder: its images are the samples where it has any, else its .npy files.
            var found = FolderFiles.Find(path, [.. ImageFolder.Extensions, NpyFolder.Extension]);
            var arrays = found.Where(NpyFolder.Holds).ToList();
            var pictures = found.Where(f => !NpyFolder.Holds(f)).ToList();
            if (pictures.Count == 0 && arrays.Count > 0) return NpyFolder.Read(inputs, path, arrays, maxSamples);
            var data = ImageFolder.Read(inputs, path, pictures, images ?? new ImagePreprocessing(), maxSamples, shapes);
            // Images beside arrays (labels saved next to them, say): the summary says which were used.
            if (arrays.Count > 0)
                data.Warnings = [.. data.Warnings, $"'{path}' holds images and .npy files: the images are the calibration samples, the .npy files are not used"];
            return data;
        }
        if (!File.Exists(path)) throw new ArgumentException($"calibration data not found: {path}");
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".npz" => FromNpzFile(inputs, path, maxSamples),
            ".npy" => FromNpyFile(inputs, path, maxSamples, checkAlongside),
            string ext => throw new ArgumentException($"calibration data '{path}' must be an .npy, an .npz or a folder of images or .npy files, not '{ext}'"),
        };
    }

    /// <summary>The first input from a .npy file (up to <paramref name="maxSamples"/> rows), in memory; other inputs seeded random.</summary>
    public static List<NamedTensor> FromNpy(IReadOnlyDictionary<string, NodeMetadata> inputs, string path, int maxSamples)
    {
        var first = inputs.First();
        var tensor = ToInput(first.Key, first.Value, NpyFile.Read(path), path, maxSamples);
        // One input (the usual case): nothing to generate. Generating it anyway, to be replaced, cost a random copy of
        // every sample (154 MB for 256 ImageNet images) and refused 1,024 of them as too large to feed at once.
        if (inputs.Count == 1) return [tensor];
        var all = InputGenerator.Generate(inputs, InputShapes.Resolve(inputs, [], (int)tensor.Shape[0]), seed: 0);
        all[0] = tensor;
        return all;
    }

    /// <summary>
    /// Like <see cref="FromNpy"/>, but float samples for a floating input stay in the file and are read a batch at a time
    /// (1,024 ImageNet samples are 616 MB); they are checked here, in one streamed pass, as <see cref="ToInput"/> checks them.
    /// </summary>
    private static CalibrationData FromNpyFile(IReadOnlyDictionary<string, NodeMetadata> inputs, string path, int maxSamples, bool checkAlongside)
    {
        var (name, meta) = inputs.First();
        var header = NpyFile.ReadHeader(path);
        if (!header.IsFloating || !NamedTensor.IsFloating(meta.ElementDataType))
        {
            var data = CalibrationData.FromTensors(FromNpy(inputs, path, maxSamples));
            data.Warnings = [.. NamedTensor.IsFloating(meta.ElementDataType) ? [Unscaled(path, name)] : Array.Empty<string>(), .. OthersRandom(inputs, path)];
            return data;
        }
        long n = CheckShape(name, meta, header.Shape, path, maxSamples);
        long[] shape = [n, .. header.Shape[1..]];
        var file = SampleFile.Open(path, header.DataOffset, header.ElementSize);
        Task? check = null;
        try
        {
            var column = SampleColumn.InFile(name, meta.ElementDataType, shape, file);
            if (checkAlongside) check = Task.Run(() => CheckValues(column, path, meta.ElementDataType));
            else CheckValues(column, path, meta.ElementDataType);
            var columns = new List<SampleColumn> { column };
            if (inputs.Count > 1)
                columns.AddRange(InputGenerator.Generate(inputs, InputShapes.Resolve(inputs, [], (int)n), seed: 0).Skip(1).Select(SampleColumn.InMemory));
            return new CalibrationData(columns, [file], check) { Warnings = OthersRandom(inputs, path) };
        }
        catch
        {
            if (check is not null)
                try { check.Wait(); }
                catch (AggregateException) { }
            file.Dispose();
            throw;
        }
    }

    /// <summary>Non-finite values, and values past float16's range for a float16 input, read back in chunks of samples.</summary>
    internal static void CheckValues(SampleColumn column, string source, TensorElementType type)
    {
        long per = column.PerSample;
        int chunk = (int)Math.Clamp((4L << 20) / Math.Max(per, 1), 1, column.Samples);
        var values = new float[chunk * per];
        for (long first = 0; first < column.Samples; first += chunk)
        {
            int count = (int)Math.Min(chunk, column.Samples - first);
            var span = values.AsSpan(0, checked((int)(count * per)));
            column.CopyFloats(first, count, span);
            CheckFloats(span, first, per, source, column.Name, type);
        }
    }

    /// <summary>
    /// Refuses a non-finite value, and for a float16 input a value past its range, naming the sample (samples of
    /// <paramref name="per"/> values, the span starting at sample <paramref name="first"/>).
    /// </summary>
    private static void CheckFloats(ReadOnlySpan<float> span, long first, long per, string source, string name, TensorElementType type)
    {
        int bad = FirstNonFinite(span);
        if (bad >= 0) throw new ArgumentException($"'{source}' holds a non-finite value ({span[bad]}) at sample {first + bad / per}");
        // Any float array feeds any floating input: a float32 file for a float16 input is rounded to nearest, as
        // a float16 file's values were when written. Only values past the input type's range are refused.
        if (type == TensorElementType.Float16 && FirstOutOfHalfRange(span) is var far && far >= 0)
            throw new ArgumentException($"'{source}' holds {span[far]} at sample {first + far / per}, outside the range of the model's float16 input '{name}' (±{(float)Half.MaxValue})");
    }

    /// <summary>
    /// Every model input from the array of the same name in a .npz archive; all must hold the same number of samples.
    /// Float arrays for floating inputs are copied out a chunk at a time into a temporary float32 file (the archive may
    /// be deflated, so it cannot be read at an offset) and read from there a batch at a time; others are held in memory.
    /// </summary>
    private static CalibrationData FromNpzFile(IReadOnlyDictionary<string, NodeMetadata> inputs, string path, int maxSamples)
    {
        using var archive = NpzArchive.Open(path);
        var columns = new List<SampleColumn>();
        var files = new List<SampleFile>();
        var warnings = new List<string>();
        try
        {
            foreach (var (name, meta) in inputs)
            {
                if (!archive.Contains(name))
                    throw new ArgumentException($"'{path}' has no array named '{name}' for the model's input (it holds {string.Join(", ", archive.Names)})");
                string source = $"{path}:{name}";
                var header = archive.ReadHeader(name);
                if (!header.IsFloating || !NamedTensor.IsFloating(meta.ElementDataType))
                {
                    columns.Add(SampleColumn.InMemory(ToInput(name, meta, archive.Read(name), source, maxSamples)));
                    if (NamedTensor.IsFloating(meta.ElementDataType)) warnings.Add(Unscaled(source, name));
                    continue;
                }
                long n = CheckShape(name, meta, header.Shape, source, maxSamples);
                long[] shape = [n, .. header.Shape[1..]];
                var file = SampleFile.CreateTemporary();
                files.Add(file);
                archive.ReadFloats(name, n * (header.ElementCount / header.Shape[0]), file.Append);
                var column = SampleColumn.InFile(name, meta.ElementDataType, shape, file);
                CheckValues(column, source, meta.ElementDataType);
                columns.Add(column);
            }
            long samples = columns[0].Samples;
            if (columns.FirstOrDefault(c => c.Samples != samples) is { } other)
                throw new ArgumentException($"'{path}' holds {samples} samples for '{columns[0].Name}' but {other.Samples} for '{other.Name}'");
            // Arrays no input is named after are not read; said, since one may be meant for an input under another name.
            var unused = archive.Names.Where(n => !inputs.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
            if (unused.Count > 0) warnings.Add($"'{path}' holds arrays no model input is named after, not used: {string.Join(", ", unused)}");
            return new CalibrationData(columns, files) { Warnings = warnings };
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An .npy or an image folder gives the first input only; a model with more inputs (a second image, a scale factor)
    /// gets seeded random values there, so its ranking and fits see noise on that branch. Said, not refused: a side
    /// input that hardly matters may be fine, and an .npz gives every input when it does.
    /// </summary>
    internal static string[] OthersRandom(IReadOnlyDictionary<string, NodeMetadata> inputs, string source) => inputs.Count < 2 ? [] :
        [$"'{source}' gives the model's first input '{inputs.First().Key}' only: its other inputs ({string.Join(", ", inputs.Keys.Skip(1))}) are fed seeded random values (give an .npz with one array per input name)"];

    /// <summary>
    /// Integers for a floating input are converted as they are: uint8 images saved as an .npy would calibrate on 0–255
    /// where the model may expect normalised values, which nothing downstream can tell.
    /// </summary>
    private static string Unscaled(string source, string name) =>
        $"'{source}' holds integers for the floating input '{name}': they are used as they are, not scaled (images: pass their folder with the --image-* options; arrays: save them preprocessed, as float)";

    /// <summary>Checks an array against one model input and converts it to the input's element type.</summary>
    internal static NamedTensor ToInput(string name, NodeMetadata meta, NpyFile.NpyArray array, string source, int maxSamples)
    {
        long n = CheckShape(name, meta, array.Shape, source, maxSamples);
        long per = array.ElementCount / array.Shape[0];
        long[] shape = [n, .. array.Shape[1..]];
        var type = meta.ElementDataType;
        if (array.Floats is { } floats)
        {
            if (!NamedTensor.IsFloating(type))
                throw new ArgumentException($"'{source}' holds floating-point data, the model's input '{name}' is {type}");
            var span = floats.AsSpan(0, checked((int)(n * per)));
            CheckFloats(span, 0, per, source, name, type);
            return new NamedTensor(name, type, shape, NamedTensor.FromFloats(span, type));
        }
        var longs = array.Longs!.AsSpan(0, checked((int)(n * per)));
        Array data = type switch
        {
            TensorElementType.Int64 => longs.ToArray(),
            TensorElementType.Int32 => Narrow(longs, v => checked((int)v), source),
            TensorElementType.UInt8 => Narrow(longs, v => checked((byte)v), source),
            TensorElementType.Bool => Narrow(longs, v => v != 0, source),
            _ when NamedTensor.IsFloating(type) => NamedTensor.FromFloats(Array.ConvertAll(longs.ToArray(), v => (float)v), type),
            _ => throw new ArgumentException($"'{source}' holds integer data, the model's input '{name}' is {type}"),
        };
        return new NamedTensor(name, type, shape, data);
    }

    /// <summary>Checks an array's shape against one model input; returns how many samples are used.</summary>
    internal static long CheckShape(string name, NodeMetadata meta, long[] arrayShape, string source, int maxSamples)
    {
        int[] dims = meta.Dimensions;
        if (arrayShape.Length != dims.Length)
            throw new ArgumentException($"'{source}' has shape {NamedTensor.FormatShape(arrayShape)}, the model's input '{name}' has {dims.Length} dims {FormatDims(dims)}");
        if (arrayShape.Length == 0 || arrayShape[0] < 1)
            throw new ArgumentException($"'{source}' holds no sample (shape {NamedTensor.FormatShape(arrayShape)})");
        for (int d = 1; d < dims.Length; d++)
            if (dims[d] > 0 && arrayShape[d] != dims[d])
                throw new ArgumentException($"'{source}' has shape {NamedTensor.FormatShape(arrayShape)}, the model's input '{name}' needs {FormatDims(dims)}");
        if (dims[0] > 0 && arrayShape[0] % dims[0] != 0)
            throw new ArgumentException($"the model's input '{name}' has a fixed batch of {dims[0]}, which does not divide the {arrayShape[0]} samples of '{source}'");
        long n = Math.Min(arrayShape[0], maxSamples);
        if (dims[0] > 0) n = Math.Max(dims[0], n / dims[0] * dims[0]);
        return n;
    }

    /// <summary>The first value that rounds to ±∞ in float16, or −1.</summary>
    private static int FirstOutOfHalfRange(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++) if (Half.IsInfinity((Half)values[i])) return i;
        return -1;
    }

    private static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++) if (!float.IsFinite(values[i])) return i;
        return -1;
    }

    private static T[] Narrow<T>(ReadOnlySpan<long> values, Func<long, T> convert, string source)
    {
        var result = new T[values.Length];
        try
        {
            for (int i = 0; i < values.Length; i++) result[i] = convert(values[i]);
        }
        catch (OverflowException)
        {
            throw new ArgumentException($"'{source}' holds values outside the range of the model input's integer type");
        }
        return result;
    }

    internal static string FormatDims(int[] dims) => "[" + string.Join("x", dims.Select(d => d > 0 ? d.ToString() : "?")) + "]";
}
