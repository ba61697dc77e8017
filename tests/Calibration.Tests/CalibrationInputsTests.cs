using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.ML.OnnxRuntime;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;
using SkiaSharp;

namespace OnnxSlim.Calibration.Tests;

/// <summary>Calibration data as users have it: .npy, .npz and image folders, checked against the model's inputs.</summary>
public sealed class CalibrationInputsTests
{
    /// <summary>Writes a .npz at <paramref name="path"/> holding the .npy <paramref name="npy"/> once under each of <paramref name="arrays"/>.</summary>
    private static string Npz(string path, string npy, params string[] arrays)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (string name in arrays) zip.CreateEntryFromFile(npy, name + ".npy");
        return path;
    }

    /// <summary>The input metadata of a model with one input of <paramref name="dims"/> (-1 for dynamic).</summary>
    private static IReadOnlyDictionary<string, NodeMetadata> Inputs(params long[] dims)
    {
        var b = new GraphBuilder();
        string x = b.Input("x", dims);
        b.Output(b.Relu(x), dims);
        var runner = new ModelRunner(b.Bytes());
        return runner.Inputs;
    }

    private static string Png(string dir, string name, int width, int height, Func<int, int, SKColor> pixel)
    {
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) bitmap.SetPixel(x, y, pixel(x, y));
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public void Images_are_normalised_per_channel_in_the_order_and_layout_asked()
    {
        string dir = Fixtures.TempDir();
        Png(dir, "a.png", 2, 2, (x, y) => new SKColor((byte)(10 + x), (byte)(100 + y), 200));
        var nchw = ImageFolder.Read(Inputs(-1, 3, 2, 2), dir, new ImagePreprocessing { Scale = 1, Mean = [10, 100, 200], Std = [1, 2, 4] }, 10).ToTensors()[0];
        Assert.Equal([1L, 3, 2, 2], nchw.Shape);
        // R plane: x; G plane: y / 2; B plane: 0.
        Assert.Equal([0f, 1, 0, 1, 0, 0, 0.5f, 0.5f, 0, 0, 0, 0], (float[])nchw.Data);

        var nhwcBgr = ImageFolder.Read(Inputs(-1, 2, 2, 3), dir, new ImagePreprocessing { Scale = 1, Channels = ChannelOrder.Bgr }, 10).ToTensors()[0];
        Assert.Equal([1L, 2, 2, 3], nhwcBgr.Shape);
        Assert.Equal([200f, 100, 10], ((float[])nhwcBgr.Data)[..3]);
    }

    /// <summary>A data set laid out one folder per class is one set, and a cap takes images from all of it.</summary>
    [Fact]
    public void Class_subfolders_are_read_in_path_order_and_a_cap_spreads_over_them()
    {
        string dir = Fixtures.TempDir();
        foreach (var (folder, name, gray) in new[] { ("b", "1.png", 30), ("a", "2.png", 20), ("a", "1.png", 10), ("c", "x.png", 40) })
        {
            Directory.CreateDirectory(Path.Combine(dir, folder));
            Png(Path.Combine(dir, folder), name, 1, 1, (_, _) => new SKColor((byte)gray, (byte)gray, (byte)gray));
        }
        var inputs = Inputs(-1, 3, 1, 1);
        var scale = new ImagePreprocessing { Scale = 1 };
        float[] Grays(int max) => [.. ((float[])ImageFolder.Read(inputs, dir, scale, max).ToTensors()[0].Data).Where((_, i) => i % 3 == 0)];
        Assert.Equal([10f, 20, 30, 40], Grays(10));
        Assert.Equal([10f, 30], Grays(2));
    }

    [Fact]
    public void An_image_size_no_input_can_hold_is_refused_before_anything_is_allocated()
    {
        // Issue 12: with a dynamic-size input, --image-size decides the allocation.
        string dir = Fixtures.TempDir();
        Png(dir, "a.png", 2, 2, (_, _) => SKColors.Gray);
        var e = Assert.Throws<ArgumentException>(() => ImageFolder.Read(Inputs(-1, 3, -1, -1), dir, new ImagePreprocessing { Height = 100_000, Width = 100_000 }, 10));
        Assert.Contains("--image-size", e.Message);
    }

    [Fact]
    public void A_dynamic_input_size_comes_from_the_image_size_or_the_input_shape_given()
    {
        // PP-OCRv4 det's input is [?, 3, ?, ?]: its users give --shape x=1,3,640,640 for the probes, and the images follow it.
        string dir = Fixtures.TempDir();
        Png(dir, "a.png", 8, 4, (_, _) => SKColors.Gray);
        var inputs = Inputs(-1, 3, -1, -1);
        var e = Assert.Throws<ArgumentException>(() => ImageFolder.Read(inputs, dir, new ImagePreprocessing(), 10));
        Assert.Contains("--image-size H,W", e.Message);
        Assert.Contains("--shape", e.Message);
        using (var fromShape = CalibrationInputs.Load(inputs, dir, 10, new ImagePreprocessing(), shapes: new Dictionary<string, long[]> { ["x"] = [1, 3, 6, 10] }))
            Assert.Equal([1L, 3, 6, 10], fromShape.ToTensors()[0].Shape);
        // --image-size wins where both are given and agree; where they disagree, the images cannot feed that shape.
        using (var both = CalibrationInputs.Load(inputs, dir, 10, new ImagePreprocessing { Height = 6, Width = 10 }, shapes: new Dictionary<string, long[]> { ["x"] = [1, 3, 6, 10] }))
            Assert.Equal([1L, 3, 6, 10], both.ToTensors()[0].Shape);
        e = Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, dir, 10, new ImagePreprocessing { Height = 4, Width = 4 }, shapes: new Dictionary<string, long[]> { ["x"] = [1, 3, 6, 10] }));
        Assert.Contains("does not match", e.Message);
        // A shape for another input, or of another rank, leaves the size to be given.
        Assert.Throws<ArgumentException>(() => ImageFolder.Read(inputs, dir, new ImagePreprocessing(), 10, new Dictionary<string, long[]> { ["y"] = [1, 3, 6, 10] }));
        Assert.Throws<ArgumentException>(() => ImageFolder.Read(inputs, dir, new ImagePreprocessing(), 10, new Dictionary<string, long[]> { ["x"] = [3, 6, 10] }));
    }

    [Fact]
    public void Pad_keeps_the_aspect_ratio_and_fills_with_zero_crop_centres()
    {
        string dir = Fixtures.TempDir();
        Png(dir, "wide.png", 8, 4, (x, _) => x < 4 ? new SKColor(255, 255, 255) : new SKColor(0, 0, 0));
        var padded = (float[])ImageFolder.Read(Inputs(-1, 1, 4, 4), dir, new ImagePreprocessing { Resize = ResizeMode.Pad, Mean = [0.5], Std = [0.5] }, 1).ToTensors()[0].Data;
        // 8x4 fits a 4x4 input as 4x2: rows 2-3 are padding (0 after normalisation); white left half is 1, black right half -1.
        Assert.Equal(1f, padded[0], 2);
        Assert.Equal(-1f, padded[3], 2);
        Assert.All(padded[8..], v => Assert.Equal(0f, v));
        var cropped = (float[])ImageFolder.Read(Inputs(-1, 1, 4, 4), dir, new ImagePreprocessing { Resize = ResizeMode.Crop }, 1).ToTensors()[0].Data;
        // 8x4 covers 4x4 at scale 1: the centre 4 columns (2..5) are kept.
        Assert.Equal([1f, 1, 0, 0], cropped[..4].Select(v => MathF.Round(v, 2)));
    }

    /// <summary>
    /// The value check of an .npy may run beside the caller: its refusal then comes from the first read, or from
    /// <see cref="CalibrationData.WaitForCheck"/>, with the same message; a range shares it; good data reads the same values.
    /// </summary>
    [Fact]
    public void A_value_check_run_alongside_refuses_at_the_first_read_with_the_same_message()
    {
        string dir = Fixtures.TempDir();
        var inputs = Inputs(-1, 1, 4, 4);
        string nan = Path.Combine(dir, "nan.npy");
        var values = Enumerable.Range(0, 48).Select(i => (float)i).ToArray();
        values[20] = float.NaN;
        NpyFile.WriteFloats(nan, [3, 1, 4, 4], values);
        using (var data = CalibrationInputs.Load(inputs, nan, 10, checkAlongside: true))
        {
            var range = data.Range(2, 1);
            Assert.Contains("non-finite value (NaN) at sample 1", Assert.Throws<ArgumentException>(() => range.Slice(0, 1)).Message);
            Assert.Contains("non-finite value (NaN) at sample 1", Assert.Throws<ArgumentException>(data.WaitForCheck).Message);
            Assert.Contains("non-finite value (NaN) at sample 1", Assert.Throws<ArgumentException>(() => data.CopyFloats("x", 0, 1, new float[16])).Message);
        }
        string good = Path.Combine(dir, "good.npy");
        values[20] = 20;
        NpyFile.WriteFloats(good, [3, 1, 4, 4], values);
        using var checkedFirst = CalibrationInputs.Load(inputs, good, 10);
        using var alongside = CalibrationInputs.Load(inputs, good, 10, checkAlongside: true);
        alongside.WaitForCheck();
        Assert.Equal((float[])checkedFirst.ToTensors()[0].Data, (float[])alongside.ToTensors()[0].Data);
    }

    /// <summary>
    /// An .npy or an image folder gives the first input only: a model with a second image input calibrated its branch on
    /// seeded noise without a word (a two-stem model, session 31). The data says so; an .npz with every input does not.
    /// </summary>
    [Fact]
    public void An_npy_or_images_for_a_model_with_two_inputs_warn_that_the_second_is_random()
    {
        var b = new GraphBuilder();
        string x = b.Input("x", -1, 3, 4, 4), y = b.Input("y", -1, 3, 4, 4);
        b.Output(b.Node("Add", [x, y]), -1, 3, 4, 4);
        var inputs = new ModelRunner(b.Bytes()).Inputs;
        string dir = Fixtures.TempDir(), images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        Png(images, "a.png", 4, 4, (_, _) => SKColors.Gray);
        string npy = Path.Combine(dir, "x.npy");
        NpyFile.WriteFloats(npy, [2, 3, 4, 4], new float[96]);
        foreach (string path in new[] { npy, images })
        {
            using var data = CalibrationInputs.Load(inputs, path, 10);
            Assert.Equal(2, data.Inputs.Count);
            Assert.Contains("other inputs (y) are fed seeded random values", Assert.Single(data.Warnings));
        }
        string npz = Npz(Path.Combine(dir, "xy.npz"), npy, "x", "y");
        using (var both = CalibrationInputs.Load(inputs, npz, 10)) Assert.Empty(both.Warnings);
        using var one = CalibrationInputs.Load(Inputs(-1, 3, 4, 4), npy, 10);
        Assert.Empty(one.Warnings);
    }

    [Fact]
    public void A_first_dim_fixed_above_one_is_refused_before_reading()
    {
        // A fixed batch of 2, or a detector's C×H×W input with no batch axis: both failed in ONNX Runtime's shape probe.
        string dir = Fixtures.TempDir();
        string npy = Path.Combine(dir, "x.npy");
        NpyFile.WriteFloats(npy, [4, 3, 4, 4], new float[192]);
        Assert.Contains("needs a batch axis first", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(Inputs(2, 3, 4, 4), npy, 10)).Message);
        NpyFile.WriteFloats(npy, [3, 4, 4], new float[48]);
        Assert.Contains("needs a batch axis first", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(Inputs(3, 4, 4), npy, 10)).Message);
        Png(dir, "a.png", 4, 4, (_, _) => SKColors.Gray);
        Assert.Contains("needs a batch axis first", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(Inputs(2, 3, 4, 4), dir, 10)).Message);
        using var batchOfOne = CalibrationInputs.Load(Inputs(1, 3, 4, 4), dir, 10);
        Assert.Equal(1, batchOfOne.Images);
    }

    [Fact]
    public void A_truncated_image_is_refused_not_decoded_in_part()
    {
        // SkiaSharp decodes the rows it has and reports IncompleteInput; the rest would be calibration data made up.
        string dir = Fixtures.TempDir();
        var random = new Random(1);
        string path = Png(dir, "a.png", 64, 64, (_, _) => new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<ArgumentException>(() => ImageFolder.Read(Inputs(-1, 3, 64, 64), dir, new ImagePreprocessing(), 10));
        Assert.Contains("is truncated", e.Message);
    }

    /// <summary>
    /// An image too large to decode in one bitmap (SkiaSharp stops at 2 GiB) is refused with its name and size; it was an
    /// internal error (exit 3). The file is a small PNG whose header says 30000×30000: nothing past the header is read.
    /// </summary>
    [Fact]
    public void An_image_too_large_to_decode_is_refused_with_its_size()
    {
        string dir = Fixtures.TempDir();
        string path = Png(dir, "a.png", 4, 4, (_, _) => SKColors.Gray);
        var bytes = File.ReadAllBytes(path);
        // IHDR is the first chunk: 8-byte signature, length, "IHDR", width, height (big-endian), …, CRC over type and data.
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(16), 30000);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(20), 30000);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(29), System.IO.Hashing.Crc32.HashToUInt32(bytes.AsSpan(12, 17)));
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ArgumentException>(() => ImageFolder.Read(Inputs(-1, 3, 8, 8), dir, new ImagePreprocessing(), 10));
        Assert.Contains("is 30000x30000 pixels", e.Message);
        Assert.Contains("too large to decode", e.Message);
    }

    [Fact]
    public void Data_that_does_not_fit_the_model_is_refused_with_the_reason()
    {
        string dir = Fixtures.TempDir();
        var inputs = Inputs(-1, 1, 4, 4);
        string nan = Path.Combine(dir, "nan.npy");
        var values = new float[32];
        values[20] = float.NaN;
        NpyFile.WriteFloats(nan, [2, 1, 4, 4], values);
        Assert.Contains("non-finite value (NaN) at sample 1", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, nan, 10)).Message);
        string rank = Path.Combine(dir, "rank.npy");
        NpyFile.WriteFloats(rank, [2, 16], new float[32]);
        Assert.Contains("has 4 dims", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, rank, 10)).Message);
        string size = Path.Combine(dir, "size.npy");
        NpyFile.WriteFloats(size, [2, 1, 4, 3], new float[24]);
        Assert.Contains("needs [?x1x4x4]", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, size, 10)).Message);
        string images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        Assert.Contains("holds no image", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, images, 10)).Message);
        File.WriteAllBytes(Path.Combine(images, "broken.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        Assert.Contains("not a readable image", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, images, 10)).Message);
        string text = Path.Combine(dir, "calib.txt");
        File.WriteAllText(text, "1 2 3");
        Assert.Contains("must be an .npy, an .npz or a folder", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, text, 10)).Message);
    }

    /// <summary>A data loader's dump, one .npy a sample or a batch, reads as the one .npy of the same samples would.</summary>
    [Fact]
    public void A_folder_of_npy_files_gives_its_samples_in_name_order()
    {
        var inputs = Inputs(-1, 1, 2, 2);
        string arrays = Fixtures.TempDir();
        float[] values = [.. Enumerable.Range(0, 20).Select(i => (float)i)];
        // Written out of order; a batch of two, and single samples with and without their batch axis.
        NpyFile.WriteFloats(Path.Combine(arrays, "c.npy"), [2, 1, 2, 2], values.AsSpan(12, 8));
        NpyFile.WriteFloats(Path.Combine(arrays, "a.npy"), [1, 2, 2], values.AsSpan(0, 4));
        NpyFile.WriteFloats(Path.Combine(arrays, "b.npy"), [2, 1, 2, 2], values.AsSpan(4, 8));
        using (var all = CalibrationInputs.Load(inputs, arrays, 10))
        {
            var t = all.ToTensors()[0];
            Assert.Equal([5L, 1, 2, 2], t.Shape);
            Assert.Equal(values, (float[])t.Data);
        }
        using var capped = CalibrationInputs.Load(inputs, arrays, 4);
        Assert.Equal(values[..16], (float[])capped.ToTensors()[0].Data);
    }

    [Fact]
    public void A_folder_of_npy_files_that_do_not_fit_is_refused_naming_the_file()
    {
        string Folder(params (string Name, long[] Shape)[] files)
        {
            string dir = Fixtures.TempDir();
            foreach (var (name, shape) in files) NpyFile.WriteFloats(Path.Combine(dir, name), shape, new float[shape.Aggregate(1L, (a, b) => a * b)]);
            return dir;
        }
        string Refusal(IReadOnlyDictionary<string, NodeMetadata> inputs, string dir) =>
            Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, dir, 10)).Message;

        var dynamic = Inputs(-1, 1, -1, -1);
        string sizes = Folder(("0.npy", [1, 4, 4]), ("1.npy", [1, 3, 3]));
        Assert.Equal($"'{Path.Combine(sizes, "1.npy")}' holds samples of shape [1x3x3], '{Path.Combine(sizes, "0.npy")}' of [1x4x4]", Refusal(dynamic, sizes));

        var fixedSize = Inputs(-1, 1, 2, 2);
        string wrong = Folder(("0.npy", [1, 2, 2]), ("1.npy", [1, 1, 2, 3]));
        Assert.Contains("1.npy' has shape [1x1x2x3], the model's input 'x' needs [?x1x2x2]", Refusal(fixedSize, wrong));

        string ints = Folder(("0.npy", [1, 2, 2]));
        string path = Path.Combine(ints, "0.npy");
        byte[] bytes = File.ReadAllBytes(path);
        bytes[bytes.AsSpan().IndexOf("<f4"u8) + 1] = (byte)'i';
        File.WriteAllBytes(path, bytes);
        Assert.Contains("holds dtype <i4; a folder of .npy files must hold float16, float32 or float64 arrays", Refusal(fixedSize, ints));

        string nan = Folder(("0.npy", [1, 2, 2]));
        NpyFile.WriteFloats(Path.Combine(nan, "1.npy"), [1, 2, 2], [0, float.NaN, 0, 0]);
        Assert.Contains("holds a non-finite value (NaN) at sample 1", Refusal(fixedSize, nan));

    }

    [Fact]
    public void Images_beside_npy_files_are_the_samples_and_a_warning_says_so()
    {
        string dir = Fixtures.TempDir();
        NpyFile.WriteFloats(Path.Combine(dir, "labels.npy"), [3], [1, 2, 3]);
        Png(dir, "0.png", 2, 2, (_, _) => SKColors.White);
        using var data = CalibrationInputs.Load(Inputs(-1, 3, 2, 2), dir, 10);
        Assert.Equal([1L, 3, 2, 2], data.ToTensors()[0].Shape);
        Assert.Equal($"'{dir}' holds images and .npy files: the images are the calibration samples, the .npy files are not used", Assert.Single(data.Warnings));
    }

    [Fact]
    public void An_npz_feeds_every_input_by_name_and_caps_the_samples()
    {
        string dir = Fixtures.TempDir();
        var inputs = Inputs(-1, 1, 4, 4);
        string a = Path.Combine(dir, "x.npy");
        NpyFile.WriteFloats(a, [3, 1, 4, 4], Enumerable.Range(0, 48).Select(i => (float)i).ToArray());
        string npz = Npz(Path.Combine(dir, "calib.npz"), a, "x");
        using var loaded = CalibrationInputs.Load(inputs, npz, maxSamples: 2);
        var x = Assert.Single(loaded.ToTensors());
        Assert.Equal([2L, 1, 4, 4], x.Shape);
        Assert.Equal(31f, ((float[])x.Data)[31]);

        string wrongName = Npz(Path.Combine(dir, "other.npz"), a, "images");
        Assert.Contains("no array named 'x'", Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(inputs, wrongName, 10)).Message);
        Assert.Empty(loaded.Warnings);
    }

    /// <summary>An array no input is named after (a second input misspelt, or one the model does not have) was ignored without a word.</summary>
    [Fact]
    public void An_npz_array_no_input_takes_is_named_in_a_warning()
    {
        string dir = Fixtures.TempDir();
        string a = Path.Combine(dir, "x.npy");
        NpyFile.WriteFloats(a, [2, 1, 4, 4], new float[32]);
        string npz = Npz(Path.Combine(dir, "calib.npz"), a, "x", "scale", "mask");
        using var loaded = CalibrationInputs.Load(Inputs(-1, 1, 4, 4), npz, 10);
        Assert.Single(loaded.ToTensors());
        Assert.Contains("holds arrays no model input is named after, not used: mask, scale", Assert.Single(loaded.Warnings));
    }
}
