using Microsoft.ML.OnnxRuntime;
using OnnxSlim.Runtime;
using SkiaSharp;

namespace OnnxSlim.Calibration;

/// <summary>
/// A folder of images (png, jpg, jpeg, bmp, webp; sorted by file name) as the model's first input. Decoding and
/// resampling are SkiaSharp's (a maintained codec library: untrusted files are not parsed by our own code).
/// </summary>
public static class ImageFolder
{
    internal static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp", ".webp"];

    /// <summary>
    /// The images decoded and preprocessed one at a time into a temporary file (deleted when the result is disposed, or
    /// when the process ends), so that a folder of many images costs one image of memory here and a batch later.
    /// </summary>
    /// <param name="shapes">Concrete shapes of the model's inputs (`--shape`), where given: they fill the first input's dynamic
    /// channel and size dims, so that a detector given `--shape x=1,3,640,640` takes its images at 640×640.</param>
    public static CalibrationData Read(IReadOnlyDictionary<string, NodeMetadata> inputs, string folder, ImagePreprocessing preprocessing, int maxSamples,
        IReadOnlyDictionary<string, long[]>? shapes = null) =>
        Read(inputs, folder, FolderFiles.Find(folder, Extensions), preprocessing, maxSamples, shapes);

    /// <param name="images">The folder's images (and those of its subfolders), by path (<see cref="FolderFiles.Find"/>).</param>
    internal static CalibrationData Read(IReadOnlyDictionary<string, NodeMetadata> inputs, string folder, IReadOnlyList<string> images,
        ImagePreprocessing preprocessing, int maxSamples, IReadOnlyDictionary<string, long[]>? shapes = null)
    {
        preprocessing.Check();
        // A cap takes images spread over the whole set, not its first classes.
        var files = FolderFiles.Spread(images, maxSamples);
        if (files.Count == 0) throw new ArgumentException($"'{folder}' holds no image ({string.Join(", ", Extensions)}) and no .npy file");
        var (name, meta) = inputs.First();
        if (!NamedTensor.IsFloating(meta.ElementDataType))
            throw new ArgumentException($"images can feed a floating-point input; the model's input '{name}' is {meta.ElementDataType}");
        var geometry = Geometry.Of(name, Filled(meta.Dimensions, shapes?.GetValueOrDefault(name)), preprocessing);
        if (meta.Dimensions[0] > 0 && files.Count % meta.Dimensions[0] != 0)
            files = files.Take(Math.Max(meta.Dimensions[0], files.Count / meta.Dimensions[0] * meta.Dimensions[0])).ToList();
        if (meta.Dimensions[0] > 0 && files.Count < meta.Dimensions[0])
            throw new ArgumentException($"the model's input '{name}' has a fixed batch of {meta.Dimensions[0]}; '{folder}' holds {files.Count} images");

        // Sizes come from --image-size or the model: refuse what one input cannot hold before allocating it.
        double values = (double)files.Count * geometry.Channels * geometry.Height * geometry.Width;
        if ((double)geometry.Channels * geometry.Height * geometry.Width > InputShapes.MaxInputElements || values > Array.MaxLength)
            throw new ArgumentException($"{files.Count} images of {geometry.Height}x{geometry.Width}x{geometry.Channels} make {values:0} values, " +
                $"more than onnxslim feeds one input (at most {InputShapes.MaxInputElements} per image, {Array.MaxLength} in all); use a smaller --image-size or fewer images (--calib-samples)");
        long per = (long)geometry.Channels * geometry.Height * geometry.Width;
        long[] shape = geometry.Layout == TensorLayout.Nchw
            ? [files.Count, geometry.Channels, geometry.Height, geometry.Width]
            : [files.Count, geometry.Height, geometry.Width, geometry.Channels];
        // Before decoding, which takes a while (the file fills at its end).
        TemporaryFile.EnsureRoom(files.Count * per * sizeof(float), "the decoded calibration images");
        var file = SampleFile.CreateTemporary();
        try
        {
            var image = new float[per];
            foreach (var f in files)
            {
                Decode(f, geometry, preprocessing, image);
                file.Append(image);
            }
            var columns = new List<SampleColumn> { SampleColumn.InFile(name, meta.ElementDataType, shape, file) };
            if (inputs.Count > 1)
                columns.AddRange(InputGenerator.Generate(inputs, InputShapes.Resolve(inputs, [], files.Count), seed: 0).Skip(1).Select(SampleColumn.InMemory));
            return new CalibrationData(columns, [file]) { Warnings = CalibrationInputs.OthersRandom(inputs, folder) };
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The model input's dims with the dynamic ones after the batch taken from <paramref name="given"/> (same rank), where given.</summary>
    private static int[] Filled(int[] dims, long[]? given)
    {
        var result = (int[])dims.Clone();
        if (given is null || given.Length != dims.Length) return result;
        for (int i = 1; i < dims.Length; i++)
            if (dims[i] <= 0 && given[i] is > 0 and <= int.MaxValue) result[i] = (int)given[i];
        return result;
    }

    /// <summary>Input size, channel count and layout: from the options where given, else from the model input's static dims.</summary>
    private sealed record Geometry(int Height, int Width, int Channels, TensorLayout Layout)
    {
        public static Geometry Of(string name, int[] dims, ImagePreprocessing p)
        {
            if (dims.Length != 4) throw new ArgumentException($"images can feed a 4-D input; the model's input '{name}' has dims {CalibrationInputs.FormatDims(dims)}");
            var layout = p.Layout ?? (dims[1] is 1 or 3 ? TensorLayout.Nchw : dims[3] is 1 or 3 ? TensorLayout.Nhwc : TensorLayout.Nchw);
            (int c, int h, int w) = layout == TensorLayout.Nchw ? (dims[1], dims[2], dims[3]) : (dims[3], dims[1], dims[2]);
            int channels = p.Channels == ChannelOrder.Gray ? 1 : p.Channels is not null ? 3 : c > 0 ? c : 3;
            if (c > 0 && c != channels) throw new ArgumentException($"the model's input '{name}' has {c} channels ({layout}), the images give {channels}");
            if (channels is not (1 or 3)) throw new ArgumentException($"the model's input '{name}' has {channels} channels; images give 1 or 3");
            int height = p.Height ?? (h > 0 ? h : throw new ArgumentException($"the model's input '{name}' has a dynamic height: give the image size (--image-size H,W, or the input's shape with --shape)"));
            int width = p.Width ?? (w > 0 ? w : throw new ArgumentException($"the model's input '{name}' has a dynamic width: give the image size (--image-size H,W, or the input's shape with --shape)"));
            if (h > 0 && h != height || w > 0 && w != width)
                throw new ArgumentException($"the image size {height}x{width} does not match the model input's {h}x{w}");
            return new Geometry(height, width, channels, layout);
        }
    }

    private static void Decode(string file, Geometry g, ImagePreprocessing p, Span<float> destination)
    {
        using var codec = SKCodec.Create(file) ?? throw new ArgumentException($"'{file}' is not a readable image");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        // Decoded whole, as RGBA: SkiaSharp allocates at most 2 GiB per bitmap (a 30000×30000 PNG, 2.7 MB on disk, threw
        // a bare Exception, reported as an internal error). Refused, naming the file, like any image that cannot be read.
        using var source = new SKBitmap();
        if (!source.TryAllocPixels(info))
            throw new ArgumentException($"'{file}' is {info.Width}x{info.Height} pixels ({info.BytesSize64 / (1 << 20)} MiB decoded), too large to decode; downscale it");
        var result = codec.GetPixels(info, source.GetPixels());
        // IncompleteInput: SkiaSharp filled the rows past the end of the file itself; they are not the user's data.
        if (result == SKCodecResult.IncompleteInput) throw new ArgumentException($"'{file}' is truncated (its image data ends early)");
        if (result != SKCodecResult.Success) throw new ArgumentException($"'{file}' could not be decoded ({result})");

        // Where the image lands in the H×W input, and which part of it is used.
        double sx = (double)g.Width / info.Width, sy = (double)g.Height / info.Height;
        double s = p.Resize switch { ResizeMode.Crop => Math.Max(sx, sy), ResizeMode.Pad => Math.Min(sx, sy), _ => 0 };
        int drawW = p.Resize == ResizeMode.Stretch ? g.Width : Math.Max(1, (int)Math.Round(info.Width * s));
        int drawH = p.Resize == ResizeMode.Stretch ? g.Height : Math.Max(1, (int)Math.Round(info.Height * s));
        using var scaled = source.Resize(new SKImageInfo(drawW, drawH, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None))
            ?? throw new ArgumentException($"'{file}' could not be resized");
        int offsetX = p.Resize == ResizeMode.Crop ? (drawW - g.Width) / 2 : 0, offsetY = p.Resize == ResizeMode.Crop ? (drawH - g.Height) / 2 : 0;

        var pixels = scaled.GetPixelSpan();
        var order = p.Channels ?? (g.Channels == 1 ? ChannelOrder.Gray : ChannelOrder.Rgb);
        double Mean(int c) => p.Mean[p.Mean.Count == 1 ? 0 : c];
        double Std(int c) => p.Std[p.Std.Count == 1 ? 0 : c];
        destination.Clear();
        for (int y = 0; y < g.Height; y++)
            for (int x = 0; x < g.Width; x++)
            {
                int srcX = x + offsetX, srcY = y + offsetY;
                bool inside = srcX < drawW && srcY < drawH;
                for (int c = 0; c < g.Channels; c++)
                {
                    double v;
                    if (!inside) v = 0;
                    else
                    {
                        int at = (srcY * drawW + srcX) * 4;
                        byte r = pixels[at], gg = pixels[at + 1], b = pixels[at + 2];
                        double pixel = order switch
                        {
                            ChannelOrder.Gray => 0.299 * r + 0.587 * gg + 0.114 * b,
                            ChannelOrder.Bgr => c == 0 ? b : c == 1 ? gg : r,
                            _ => c == 0 ? r : c == 1 ? gg : b,
                        };
                        v = (pixel * p.Scale - Mean(c)) / Std(c);
                    }
                    int index = g.Layout == TensorLayout.Nchw ? (c * g.Height + y) * g.Width + x : (y * g.Width + x) * g.Channels + c;
                    destination[index] = (float)v;
                }
            }
    }
}
