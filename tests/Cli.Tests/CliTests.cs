using OnnxSlim.TestSupport;
using System.Text.Json;
using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Cli.Tests;

public sealed class CliTests
{
    private static readonly string Model = Fixtures.DemoModel;

    private static void AssertBadInput(CliRunner.Result r, string expectedInMessage, string outputPath)
    {
        Assert.Equal(2, r.ExitCode);
        // Progress lines may come first; the error itself is one line, the last.
        var lines = r.Stderr.Trim().Split('\n');
        string err = Assert.Single(lines, l => l.Contains("error", StringComparison.OrdinalIgnoreCase));
        Assert.StartsWith("onnxslim: error:", err);
        Assert.Equal(err, lines[^1]);
        Assert.Contains(expectedInMessage, err, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
        Assert.False(File.Exists(outputPath), "no output file may be written");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(outputPath)!, "*.tmp*"));
    }

    [Fact]
    public void Bad_model_files_exit_2_with_one_line_and_no_output()
    {
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "out.onnx");
        var bytes = File.ReadAllBytes(Model);
        string truncated = Path.Combine(dir, "truncated.onnx");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 3)]);
        string random = Path.Combine(dir, "random.onnx");
        var junk = new byte[10_000];
        new Random(7).NextBytes(junk);
        File.WriteAllBytes(random, junk);
        string tensor = Path.Combine(dir, "tensor.onnx");
        File.WriteAllBytes(tensor, new TensorProto { Name = "t", DataType = 1, Dims = { 1 }, FloatData = { 1 } }.ToByteArray());

        AssertBadInput(CliRunner.Run(Path.Combine(dir, "missing.onnx"), "-o", output), "not found", output);
        AssertBadInput(CliRunner.Run(truncated, "-o", output), "ONNX model", output);
        AssertBadInput(CliRunner.Run(random, "-o", output), "", output);
        AssertBadInput(CliRunner.Run(tensor, "-o", output), "ONNX model", output);
    }

    [Fact]
    public void Unprunable_and_quantized_models_are_refused()
    {
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "out.onnx");
        string relu = Path.Combine(dir, "relu.onnx");
        File.WriteAllBytes(relu, TinyModel("Relu").ToByteArray());
        string quant = Path.Combine(dir, "quant.onnx");
        File.WriteAllBytes(quant, TinyModel("QLinearConv").ToByteArray());
        AssertBadInput(CliRunner.Run(relu, "-o", output, "--no-validate"), "no prunable", output);
        AssertBadInput(CliRunner.Run(quant, "-o", output), "quantized", output);
    }

    [Fact]
    public void Bad_options_are_refused_before_any_work()
    {
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "out.onnx");
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--cr", "0.99"), "--cr", output);
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--cr", "-0.1"), "--cr", output);
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--ignore", "no_such_node*"), "ignore pattern 'no_such_node*' matches no node", output);
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--criterion", "entropy"), "criterion", output);
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--criterion", "refit"), "--calib", output);
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--compensation", "magic"), "compensation", output);
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--round-to", "0"), "round-to", output);
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--frobnicate"), "frobnicate", output);

        string copy = Path.Combine(dir, "model.onnx");
        File.Copy(Model, copy);
        var before = File.ReadAllBytes(copy);
        var r = CliRunner.Run(copy, "-o", copy);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--force", r.Stderr);
        Assert.Equal(before, File.ReadAllBytes(copy));
    }

    [Fact]
    public void Cuda_where_it_cannot_run_is_one_line_and_exit_2_before_any_work()
    {
        // The test build carries the CPU package; the GPU flavour names the missing CUDA library instead.
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "out.onnx");
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--provider", "cuda"), "--provider cuda: the CUDA provider cannot run here", output);
        AssertBadInput(CliRunner.Run("bench", Model, "--provider", "cuda"), "CUDA", output);
    }

    [Fact]
    public void Latency_target_with_cuda_is_one_line_naming_the_flag_and_exit_2()
    {
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "out.onnx");
        AssertBadInput(CliRunner.Run(Model, "-o", output, "--target", "latency", "--provider", "cuda"),
            "--target latency is measured per kernel on the CPU provider only", output);
    }

    [Fact]
    public void Prune_is_deterministic_and_plans_replay_to_the_same_file()
    {
        string dir = Fixtures.TempDir();
        string a = Path.Combine(dir, "a.onnx"), b = Path.Combine(dir, "b.onnx"), c = Path.Combine(dir, "c.onnx");
        string plan = Path.Combine(dir, "plan.json"), report = Path.Combine(dir, "report.json"), html = Path.Combine(dir, "report.html");
        var ra = CliRunner.Run(Model, "-o", a, "--cr", "0.5", "--plan-out", plan, "--report", report, "--no-bench");
        Assert.True(ra.ExitCode == 0, ra.Stderr);
        var rb = CliRunner.Run(Model, "-o", b, "--cr", "0.5", "--report", html, "--no-bench");
        Assert.True(rb.ExitCode == 0, rb.Stderr);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        var rc = CliRunner.Run(Model, "-o", c, "--plan-in", plan, "--no-bench");
        Assert.True(rc.ExitCode == 0, rc.Stderr);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(c));

        using var planJson = JsonDocument.Parse(File.ReadAllText(plan));
        Assert.Equal("onnxslim-plan/1", planJson.RootElement.GetProperty("format").GetString());
        var groups = planJson.RootElement.GetProperty("groups").EnumerateArray().ToList();
        Assert.Contains(groups, g => g.GetProperty("keep").GetArrayLength() < g.GetProperty("channels").GetInt32());

        using var reportJson = JsonDocument.Parse(File.ReadAllText(report));
        double before = reportJson.RootElement.GetProperty("before").GetProperty("macs").GetDouble();
        double after = reportJson.RootElement.GetProperty("after").GetProperty("macs").GetDouble();
        Assert.InRange(1 - after / before, 0.49, 0.51);
        Assert.True(reportJson.RootElement.GetProperty("agreement").GetProperty("cosine").GetDouble() > 0);
        string page = File.ReadAllText(html);
        Assert.Contains("<svg", page);
        Assert.DoesNotContain("http://", page.Replace("http://www.w3.org/2000/svg", ""));
    }

    [Fact]
    public void Calibration_ranks_by_refit_error_and_reconstruction_restores_agreement()
    {
        string dir = Fixtures.TempDir();
        string slim = Path.Combine(dir, "slim.onnx"), report = Path.Combine(dir, "report.json");
        var r = CliRunner.Run(Model, "-o", slim, "--cr", "0.5", "--calib", Fixtures.CalibX, "--report", report, "--no-bench");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        var root = json.RootElement;
        Assert.Equal("refit", root.GetProperty("criterion").GetString());
        Assert.Contains(root.GetProperty("notes").EnumerateArray(), n => n.GetString()!.StartsWith("refit ranking: 12 of 12 groups"));
        Assert.InRange(root.GetProperty("achieved_reduction").GetDouble(), 0.49, 0.51);
        double before = root.GetProperty("agreement_before_recovery").GetProperty("top1_agreement").GetDouble();
        double after = root.GetProperty("agreement").GetProperty("top1_agreement").GetDouble();
        Assert.True(after > 0.95 && after > before, $"top-1 agreement on calibration samples: {before:0.000} before reconstruction, {after:0.000} after");

        // An explicit criterion still wins over the calibrated default.
        string gemReport = Path.Combine(dir, "gem.json");
        var gem = CliRunner.Run(Model, "-o", Path.Combine(dir, "gem.onnx"), "--cr", "0.5", "--calib", Fixtures.CalibX, "--criterion", "gem", "--report", gemReport, "--no-bench");
        Assert.True(gem.ExitCode == 0, gem.Stderr);
        using var gemJson = JsonDocument.Parse(File.ReadAllText(gemReport));
        Assert.Equal("gem", gemJson.RootElement.GetProperty("criterion").GetString());
    }

    [Fact]
    public void Inspect_counts_parameters_like_an_independent_count()
    {
        var r = CliRunner.Run("inspect", Model, "--json", "--groups");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(r.Stdout);
        using var model = GraphIO.OnnxModel.Load(Model);
        long independent = model.Graph.Initializers.Values.Where(t => t.IsFloating).Sum(t => t.ElementCount);
        Assert.Equal(independent, json.RootElement.GetProperty("total_params").GetInt64());
        // First conv: 16 filters of 1x3x3 over a 28x28 output.
        Assert.Equal(16L * 28 * 28 * 9, json.RootElement.GetProperty("layers")[0].GetProperty("macs").GetInt64());
        Assert.True(json.RootElement.GetProperty("groups").GetArrayLength() > 5);
        Assert.Equal(new long[] { 1, 1, 28, 28 }, json.RootElement.GetProperty("inputs").GetProperty("input").EnumerateArray().Select(e => e.GetInt64()).ToArray());

        // The table form prints shapes in brackets, which the terminal markup must not swallow.
        var table = CliRunner.Run("inspect", Model, "--groups");
        Assert.True(table.ExitCode == 0, table.Stderr);
        Assert.Contains("[16x1x3x3]", table.Stdout);
        Assert.Contains("input=[1x1x28x28]", table.Stdout);
        var analyze = CliRunner.Run("analyze", Model, "--cr", "0.5");
        Assert.True(analyze.ExitCode == 0, analyze.Stderr);
        Assert.Contains("threshold", analyze.Stdout);
    }

    [Fact]
    public void Validate_and_bench_compare_two_models()
    {
        string dir = Fixtures.TempDir();
        string slim = Path.Combine(dir, "slim.onnx");
        Assert.Equal(0, CliRunner.Run(Model, "-o", slim, "--cr", "0.7", "--no-bench").ExitCode);
        var same = CliRunner.Run("validate", Model, Model, "--min-cosine", "0.999999");
        Assert.True(same.ExitCode == 0, same.Stderr);
        var differs = CliRunner.Run("validate", Model, slim, "--inputs", Fixtures.CalibX, "--min-top1", "0.9999");
        Assert.Equal(1, differs.ExitCode);
        var bench = CliRunner.Run("bench", Model, "--vs", slim, "--runs", "5", "--json");
        Assert.True(bench.ExitCode == 0, bench.Stderr);
        using var json = JsonDocument.Parse(bench.Stdout);
        Assert.Equal(2, json.RootElement.GetArrayLength());
        Assert.All(json.RootElement.EnumerateArray(), e => Assert.True(e.GetProperty("median_ms").GetDouble() > 0));
    }

    private static ModelProto TinyModel(string op)
    {
        var graph = new GraphProto
        {
            Name = "tiny",
            Input = { new ValueInfoProto { Name = "x", Type = FloatType(1, 1, 4, 4) } },
            Output = { new ValueInfoProto { Name = "y", Type = FloatType(1, 1, 4, 4) } },
        };
        graph.Node.Add(new NodeProto { OpType = op, Input = { "x" }, Output = { "y" }, Name = "only" });
        return new ModelProto { IrVersion = 8, OpsetImport = { new OperatorSetIdProto { Version = 13 } }, Graph = graph };
    }

    private static TypeProto FloatType(params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = shape } };
    }

    [Theory]
    [InlineData("bench", "<MODEL>  ONNX model to time")]
    [InlineData("inspect", "<MODEL>  ONNX model")]
    [InlineData("validate", "<SLIM>")]
    public void Subcommand_help_lists_only_its_own_arguments(string command, string ownRow)
    {
        var r = CliRunner.Run(command, "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains(ownRow, r.Stdout);
        Assert.Contains($"onnxslim {command} <", r.Stdout);
        Assert.DoesNotContain("[<MODEL>]", r.Stdout);
        Assert.DoesNotContain("ONNX model to prune", r.Stdout);
        // The root page still shows the prune argument.
        var root = CliRunner.Run("--help");
        Assert.Contains("onnxslim [<MODEL>] [command] [options]", root.Stdout);
        Assert.Contains("ONNX model to prune", root.Stdout);
    }

    [Fact]
    public void Validate_compares_a_detector_on_the_layer_outputs_before_its_data_dependent_part()
    {
        // A detector in small: a head conv whose positive positions are found (as NMS keeps boxes), then a MatMul per position.
        var b = new GraphBuilder(seed: 3);
        string x = b.Input("x", 1, 3, 16, 16);
        string head = b.Conv(b.Relu(b.Conv(b.Relu(b.Conv(x, 3, 32)), 32, 32)), 32, 4);
        string positions = b.Node("Transpose", [b.Node("NonZero", [b.Node("Greater", [head, b.Init("zero", [1], [0f])])])]);
        string found = b.Node("MatMul", [b.Node("Cast", [positions], ("to", 1L)), b.Init("per_position", [4, 8])]);
        b.Output(found, -1, 8);
        string dir = Fixtures.TempDir();
        string original = b.Save(Path.Combine(dir, "detector.onnx"));
        string pruned = Path.Combine(dir, "pruned.onnx");
        Assert.Equal(0, CliRunner.Run(original, "-o", pruned, "--cr", "0.5", "--no-bench").ExitCode);

        var text = CliRunner.Run("validate", original, pruned);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains($"layer output before the part after NonZero (e.g. '{head}'), not over the outputs ('{found}')", text.Stdout.ReplaceLineEndings(""));
        var json = System.Text.Json.JsonDocument.Parse(CliRunner.Run("validate", original, pruned, "--json").Stdout).RootElement;
        Assert.Equal(1, json.GetProperty("outputs_compared").GetInt32());
        Assert.Equal(head, json.GetProperty("values_compared")[0].GetString());
        Assert.InRange(json.GetProperty("cosine").GetDouble(), 0.05, 0.99999);
        // A pruned model whose weights sit in an external data file is compared the same way.
        string external = Path.Combine(dir, "external.onnx");
        Assert.Equal(0, CliRunner.Run(original, "-o", external, "--cr", "0.5", "--no-bench", "--external-data").ExitCode);
        var fromExternal = System.Text.Json.JsonDocument.Parse(CliRunner.Run("validate", original, external, "--json").Stdout).RootElement;
        Assert.Equal(json.GetProperty("cosine").GetDouble(), fromExternal.GetProperty("cosine").GetDouble(), 12);
        // The same model against itself agrees exactly on those values.
        var same = System.Text.Json.JsonDocument.Parse(CliRunner.Run("validate", original, original, "--json").Stdout).RootElement;
        Assert.Equal(1.0, same.GetProperty("cosine").GetDouble(), 9);
    }
}
