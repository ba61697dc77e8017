using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;
using SkiaSharp;

namespace OnnxSlim.Calibration.Tests;

/// <summary>Calibration samples in memory or in a file hand out the same batches; file-backed sets hold no array of them.</summary>
public class CalibrationDataTests
{
    private static IReadOnlyDictionary<string, NodeMetadata> Inputs(params long[] dims)
    {
        var b = new GraphBuilder();
        string x = b.Input("x", dims);
        b.Output(b.Relu(x), dims);
        using var runner = new ModelRunner(b.Bytes());
        return runner.Inputs;
    }

    /// <summary>A .npy of <paramref name="descr"/> ('&lt;f2', '&lt;f4', '&lt;f8', '|u1') holding <paramref name="values"/>.</summary>
    private static string Npy(string descr, long[] shape, float[] values)
    {
        string path = Path.Combine(Fixtures.TempDir(), "x.npy");
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({string.Join(", ", shape)}), }}";
        header += new string(' ', 63 - (10 + header.Length) % 64) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, .. "NUMPY"u8, 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        switch (descr)
        {
            case "<f2": stream.Write(MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan())); break;
            case "<f8": stream.Write(MemoryMarshal.AsBytes(values.Select(v => (double)v).ToArray().AsSpan())); break;
            case "|u1": stream.Write(values.Select(v => checked((byte)v)).ToArray()); break;
            default: stream.Write(MemoryMarshal.AsBytes(values.AsSpan())); break;
        }
        return path;
    }

    [Fact]
    public void First_rows_share_the_data_and_read_only_their_samples()
    {
        // 5 samples of 2×3; the set sees the first 3, and whatever it hands ONNX Runtime has its exact length.
        var data = Enumerable.Range(0, 30).Select(i => (float)i).ToArray();
        var all = new NamedTensor("x", TensorElementType.Float, [5, 2, 3], data);
        var first = all.FirstRows(3);
        Assert.Same(data, first.Data);
        Assert.Equal(new long[] { 3, 2, 3 }, first.Shape);

        using var set = CalibrationData.FromTensors([first]);
        Assert.Equal(3, set.Images);
        var sample = new float[6];
        set.CopyFloats("x", 2, 1, sample);
        Assert.Equal(data[12..18], sample);
        var whole = Assert.Single(set.Slice(0, 3));
        Assert.Equal(data[..18], (float[])whole.Data);
        Assert.Same(data, Assert.Single(CalibrationData.FromTensors([all]).ToTensors()).Data);
        Assert.Throws<ArgumentException>(() => set.Slice(2, 2));
        Assert.Throws<ArgumentException>(() => all.FirstRows(6));
        Assert.Throws<ArgumentException>(() => CalibrationData.FromTensors([all with { Shape = [6, 2, 3] }]));
    }

    /// <summary>Integers for a floating input are used unscaled, which the set says in one warning; floats give none.</summary>
    [Fact]
    public void Integer_samples_for_a_floating_input_carry_a_warning_that_they_are_not_scaled()
    {
        var values = Enumerable.Range(0, 4 * 6).Select(i => (float)(i * 10)).ToArray();
        var inputs = Inputs(-1, 1, 2, 3);
        using var bytes = CalibrationInputs.Load(inputs, Npy("|u1", [4, 1, 2, 3], values), maxSamples: 4);
        var warning = Assert.Single(bytes.Warnings);
        Assert.Contains("integers for the floating input 'x'", warning);
        Assert.Contains("not scaled", warning);
        var sample = new float[6];
        bytes.CopyFloats("x", 3, 1, sample);
        Assert.Equal(values[18..24], sample); // as they are: 180…230, not divided by 255
        using var floats = CalibrationInputs.Load(inputs, Npy("<f4", [4, 1, 2, 3], values), maxSamples: 4);
        Assert.Empty(floats.Warnings);
    }

    [Theory]
    [InlineData("<f4")]
    [InlineData("<f2")]
    [InlineData("<f8")]
    public void An_npy_stays_in_its_file_and_reads_the_same_batches_as_in_memory(string descr)
    {
        // Values float16 holds exactly, so every dtype reads back the same floats.
        var values = Enumerable.Range(0, 6 * 2 * 3).Select(i => i * 0.25f - 4).ToArray();
        string path = Npy(descr, [6, 1, 2, 3], values);
        var inputs = Inputs(-1, 1, 2, 3);
        using var fromFile = CalibrationInputs.Load(inputs, path, maxSamples: 5);
        using var inMemory = CalibrationData.FromTensors(CalibrationInputs.FromNpy(inputs, path, maxSamples: 5));
        Assert.True(fromFile.Inputs[0].IsFileBacked);
        Assert.False(inMemory.Inputs[0].IsFileBacked);
        Assert.Equal(5, fromFile.Images);

        Assert.Equal((float[])inMemory.Slice(1, 3)[0].Data, (float[])fromFile.Slice(1, 3)[0].Data);
        Assert.Equal(values[6..24], (float[])fromFile.Slice(1, 3)[0].Data);
        var tail = fromFile.Range(3, 2);
        var copied = new float[6];
        tail.CopyFloats("x", 1, 1, copied);
        Assert.Equal(values[24..30], copied);
        Assert.Throws<ArgumentException>(() => tail.Slice(1, 2)); // the range holds 2 samples
    }

    /// <summary>An .npz holding <paramref name="npy"/> as member x.npy, deflated or stored.</summary>
    private static string Npz(string npy, CompressionLevel level)
    {
        string path = Path.Combine(Fixtures.TempDir(), "calib.npz");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        zip.CreateEntryFromFile(npy, "x.npy", level);
        return path;
    }

    [Theory]
    [InlineData("<f4", CompressionLevel.NoCompression)]
    [InlineData("<f2", CompressionLevel.Optimal)]
    [InlineData("<f8", CompressionLevel.Optimal)]
    public void An_npz_is_copied_out_to_a_file_and_reads_the_same_batches_as_its_npy(string descr, CompressionLevel level)
    {
        // 3,000 samples of 2×3 (float64: 144 KB), more than one chunk of the copy for float16.
        var values = Enumerable.Range(0, 3000 * 6).Select(i => (i % 1000) * 0.25f - 100).ToArray();
        string npy = Npy(descr, [3000, 1, 2, 3], values);
        var inputs = Inputs(-1, 1, 2, 3);
        using var fromNpz = CalibrationInputs.Load(inputs, Npz(npy, level), maxSamples: 2999);
        using var fromNpy = CalibrationData.FromTensors(CalibrationInputs.FromNpy(inputs, npy, maxSamples: 2999));
        Assert.True(fromNpz.Inputs[0].IsFileBacked);
        Assert.Equal(2999, fromNpz.Images);
        Assert.Equal((float[])fromNpy.Slice(0, 2999)[0].Data, (float[])fromNpz.Slice(0, 2999)[0].Data);
        Assert.Equal(values[(2998 * 6)..(2999 * 6)], (float[])fromNpz.Slice(2998, 1)[0].Data);
    }

    [Fact]
    public void A_non_finite_value_or_a_short_member_in_an_npz_is_refused_in_one_line()
    {
        var values = new float[4 * 6];
        values[3 * 6 + 2] = float.PositiveInfinity;
        string npz = Npz(Npy("<f4", [4, 1, 2, 3], values), CompressionLevel.Optimal);
        var e = Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(Inputs(-1, 1, 2, 3), npz, 10));
        Assert.Contains("calib.npz:x' holds a non-finite value", e.Message);
        Assert.EndsWith("at sample 3", e.Message);

        // A stored member with one value's low byte changed: still finite, but not what was archived.
        string stored = Npz(Npy("<f4", [4, 1, 2, 3], Enumerable.Range(0, 24).Select(i => i + 0.5f).ToArray()), CompressionLevel.NoCompression);
        var bytes = File.ReadAllBytes(stored);
        bytes[30 + "x.npy".Length + 128 + 4 * 5] ^= 1;
        File.WriteAllBytes(stored, bytes);
        e = Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(Inputs(-1, 1, 2, 3), stored, 10));
        Assert.EndsWith("calib.npz:x.npy' is damaged: its bytes do not match the archive's CRC-32", e.Message);

        // A damaged central directory (read only when the members are listed).
        string listed = Npz(Npy("<f4", [4, 1, 2, 3], new float[24]), CompressionLevel.Optimal);
        bytes = File.ReadAllBytes(listed);
        int directory = bytes.AsSpan().LastIndexOf("PK\u0001\u0002"u8);
        bytes[directory + 3] = 9; // its entry's signature
        File.WriteAllBytes(listed, bytes);
        e = Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(Inputs(-1, 1, 2, 3), listed, 10));
        Assert.Contains("is not a readable .npz archive", e.Message);

        // A member whose header promises more values than it holds.
        string npy = Npy("<f4", [4, 1, 2, 3], new float[4 * 6]);
        File.WriteAllBytes(npy, File.ReadAllBytes(npy)[..^8]);
        e = Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(Inputs(-1, 1, 2, 3), Npz(npy, CompressionLevel.Optimal), 10));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("x.npy", e.Message);
    }

    [Fact]
    public void A_non_finite_value_in_a_file_backed_npy_is_refused_with_its_sample()
    {
        var values = new float[4 * 6];
        values[3 * 6 + 2] = float.NaN;
        string path = Npy("<f4", [4, 1, 2, 3], values);
        var e = Assert.Throws<ArgumentException>(() => CalibrationInputs.Load(Inputs(-1, 1, 2, 3), path, 10));
        Assert.Contains("non-finite value (NaN) at sample 3", e.Message);
        Assert.Contains("non-finite value (NaN) at sample 3", Assert.Throws<ArgumentException>(() => CalibrationInputs.FromNpy(Inputs(-1, 1, 2, 3), path, 10)).Message);
    }

    [Fact]
    public void Decoded_images_wait_in_a_temporary_file_that_leaves_nothing_behind()
    {
        string dir = Fixtures.TempDir();
        for (int i = 0; i < 3; i++)
        {
            using var bitmap = new SKBitmap(2, 2);
            bitmap.Erase(new SKColor((byte)(40 * i), 0, 0));
            using var png = SKImage.FromBitmap(bitmap).Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(dir, $"{i}.png"), png.ToArray());
        }
        string[] Ours() => Directory.GetFiles(Path.GetTempPath(), $"onnxslim-{Environment.ProcessId}-samples-*");
        var before = Ours();
        var set = CalibrationInputs.Load(Inputs(-1, 3, 2, 2), dir, 10, new ImagePreprocessing { Scale = 1 });
        Assert.True(set.Inputs[0].IsFileBacked);
        // On Unix the name is gone as soon as the file is open, so not even a killed process leaves it behind.
        if (!OperatingSystem.IsWindows()) Assert.Equal(before, Ours());
        var red = new float[3 * 4];
        set.CopyFloats("x", 2, 1, red);
        Assert.All(red[..4], v => Assert.Equal(80f, v));
        Assert.All(red[4..], v => Assert.Equal(0f, v));
        set.Dispose();
        Assert.Equal(before, Ours());
    }
}
