using System.Text.Json;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;
using SkiaSharp;

namespace OnnxSlim.Cli.Tests;

/// <summary>The calibrated path as a user runs it: data formats, the honest report, the agreement gate.</summary>
public sealed class CalibrationCliTests
{
    private static readonly string Model = Fixtures.DemoModel;

    [Fact]
    public void Without_calibration_the_summary_json_and_html_warn_first()
    {
        string dir = Fixtures.TempDir();
        string html = Path.Combine(dir, "r.html");
        var r = CliRunner.Run(Model, "-o", Path.Combine(dir, "a.onnx"), "--no-bench", "--report", html);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.StartsWith("warning: no calibration data", r.Stdout.TrimStart());
        Assert.Contains("not a measure of accuracy", r.Stdout);
        var json = CliRunner.Run(Model, "-o", Path.Combine(dir, "b.onnx"), "--no-bench", "--json");
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal("warnings", doc.RootElement.EnumerateObject().First().Name);
        Assert.StartsWith("no calibration data", doc.RootElement.GetProperty("warnings")[0].GetString());
        Assert.False(doc.RootElement.GetProperty("agreement_on_real_data").GetBoolean());
        string page = File.ReadAllText(html);
        Assert.True(page.IndexOf("Warning:", StringComparison.Ordinal) < page.IndexOf("<h1>", StringComparison.Ordinal));
    }

    [Fact]
    public void A_minimum_agreement_not_reached_exits_1_and_writes_nothing()
    {
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "out.onnx"), plan = Path.Combine(dir, "plan.json"), report = Path.Combine(dir, "report.json");
        var r = CliRunner.Run(Model, "-o", output, "--cr", "0.9", "--compensation", "none", "--calib", Fixtures.CalibX, "--calib-samples", "40",
            "--criterion", "l1", "--allocation", "uniform", "--min-agreement", "0.999", "--plan-out", plan, "--report", report, "--no-bench");
        Assert.Equal(1, r.ExitCode);
        string error = Assert.Single(r.Stderr.Split('\n'), l => l.Contains("error"));
        Assert.Contains("top-1 agreement", error);
        Assert.Contains("5 held-out calibration samples", error);
        Assert.Contains("below the minimum 0.999", error);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void Criterion_refit_named_with_calibration_data_runs()
    {
        // The option pair was checked before the data was read, so naming the default criterion was refused as lacking it.
        string dir = Fixtures.TempDir();
        var r = CliRunner.Run(Model, "-o", Path.Combine(dir, "out.onnx"), "--calib", Fixtures.CalibX, "--calib-samples", "24",
            "--criterion", "refit", "--no-bench", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("refit", doc.RootElement.GetProperty("criterion").GetString());
    }

    [Fact]
    public void A_calibrated_report_draws_the_curves_the_allocation_cut_not_the_weight_spectra()
    {
        // The threshold cut each ranked group's weighed re-fit error curve; drawn across the weight spectra it said why a
        // group kept what it did, wrongly.
        string dir = Fixtures.TempDir();
        string html = Path.Combine(dir, "r.html");
        var r = CliRunner.Run(Model, "-o", Path.Combine(dir, "out.onnx"), "--calib", Fixtures.CalibX, "--calib-samples", "40",
            "--no-bench", "--json", "--report", html);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var prunable = doc.RootElement.GetProperty("groups").EnumerateArray().Where(g => !g.GetProperty("frozen").GetBoolean()).ToList();
        Assert.NotEmpty(prunable);
        Assert.All(prunable, g => Assert.Equal(JsonValueKind.Array, g.GetProperty("allocation_curve").ValueKind));
        // The ranked groups' weight spectra are not even computed: the allocation does not read them.
        Assert.All(prunable, g => Assert.Equal(JsonValueKind.Null, g.GetProperty("normalized_spectrum").ValueKind));
        string page = File.ReadAllText(html);
        Assert.Contains("<h2>Allocation curves</h2>", page);
        Assert.DoesNotContain("Normalised spectra", page);
        Assert.Contains("threshold τ", page);
    }

    [Fact]
    public void A_folder_of_images_calibrates_and_a_held_out_part_validates()
    {
        string dir = Fixtures.TempDir(), images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        // Twelve training images back to 8-bit grey, as a user would have them on disk.
        var calib = NpyFile.Read(Fixtures.CalibX);
        for (int i = 0; i < 12; i++)
        {
            using var bitmap = new SKBitmap(28, 28, SKColorType.Gray8, SKAlphaType.Opaque);
            for (int p = 0; p < 784; p++)
            {
                double v = calib.Floats![i * 784 + p] * 0.3530 + 0.2860;
                byte g = (byte)Math.Clamp(Math.Round(v * 255), 0, 255);
                bitmap.SetPixel(p % 28, p / 28, new SKColor(g, g, g));
            }
            using var data = SKImage.FromBitmap(bitmap).Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(images, $"{i:D2}.png"), data.ToArray());
        }
        string report = Path.Combine(dir, "r.json");
        var r = CliRunner.Run(Model, "-o", Path.Combine(dir, "slim.onnx"), "--cr", "0.3", "--calib", images,
            "--image-mean", "0.2860", "--image-std", "0.3530", "--report", report, "--no-bench");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        Assert.Equal("1 held-out calibration sample, not used for ranking or fitting", json.RootElement.GetProperty("agreement_inputs").GetString());
        Assert.Contains("on 11 samples", json.RootElement.GetProperty("recovery").GetString());
        Assert.True(json.RootElement.GetProperty("agreement_on_real_data").GetBoolean());
        // One held-out image is no measure of accuracy, and the report says so (no other warning: the images fed the model).
        Assert.Contains("read on 1 held-out calibration sample only, too few to stand for accuracy",
            Assert.Single(json.RootElement.GetProperty("warnings").EnumerateArray()).GetString());

        var bad = CliRunner.Run(Model, "-o", Path.Combine(dir, "bad.onnx"), "--calib", images, "--image-size", "0,28");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--image-size", bad.Stderr);
    }

    [Fact]
    public void Images_for_a_dynamic_size_input_take_the_size_of_its_shape()
    {
        // A detector-like input [?, 3, ?, ?]: --shape, which the probes need anyway, also sizes the images.
        string dir = Fixtures.TempDir(), images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", -1, 3, -1, -1);
        b.Output(b.Conv(b.Relu(b.Conv(b.Relu(b.Conv(x, 3, 16)), 16, 16)), 16, 4), -1, 4, -1, -1);
        string model = b.Save(Path.Combine(dir, "dynamic.onnx"));
        var random = new Random(7);
        for (int i = 0; i < 10; i++)
        {
            using var bitmap = new SKBitmap(20, 12, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            for (int p = 0; p < 240; p++) bitmap.SetPixel(p % 20, p / 20, new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)));
            using var data = SKImage.FromBitmap(bitmap).Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(images, $"{i:D2}.png"), data.ToArray());
        }
        string output = Path.Combine(dir, "slim.onnx");
        var unsized = CliRunner.Run(model, "-o", output, "--cr", "0.3", "--calib", images, "--no-bench");
        Assert.Equal(2, unsized.ExitCode);
        Assert.Contains("--image-size H,W, or the input's shape with --shape", unsized.Stderr);
        Assert.False(File.Exists(output));
        string report = Path.Combine(dir, "r.json");
        var r = CliRunner.Run(model, "-o", output, "--cr", "0.3", "--calib", images, "--shape", "x=1,3,12,20", "--report", report, "--no-bench");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        Assert.True(json.RootElement.GetProperty("agreement_on_real_data").GetBoolean());
    }

    [Fact]
    public void Bad_calibration_data_exits_2_with_one_line_and_no_output()
    {
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "out.onnx");
        string nan = Path.Combine(dir, "nan.npy");
        var values = new float[2 * 784];
        values[900] = float.PositiveInfinity;
        NpyFile.WriteFloats(nan, [2, 1, 28, 28], values);
        string wrongSize = Path.Combine(dir, "size.npy");
        NpyFile.WriteFloats(wrongSize, [2, 1, 32, 32], new float[2 * 1024]);
        string broken = Path.Combine(dir, "broken.npy");
        File.WriteAllBytes(broken, [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 20, 0, .. "{'descr': '<f4', 'fo"u8]);
        foreach (var (file, expected) in new[] { (nan, "non-finite"), (wrongSize, "needs"), (broken, "") })
        {
            var r = CliRunner.Run(Model, "-o", output, "--calib", file);
            Assert.Equal(2, r.ExitCode);
            Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("onnxslim: error:"));
            Assert.Contains(expected, r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);
            Assert.False(File.Exists(output));
        }
        var zero = CliRunner.Run(Model, "-o", output, "--calib", Fixtures.CalibX, "--calib-samples", "0");
        Assert.Equal(2, zero.ExitCode);
        Assert.Contains("--calib-samples", zero.Stderr);
        var all = CliRunner.Run(Model, "-o", output, "--calib", Fixtures.CalibX, "--calib-samples", "10", "--holdout", "10");
        Assert.Equal(2, all.ExitCode);
        Assert.Contains("--holdout", all.Stderr);
    }
}
