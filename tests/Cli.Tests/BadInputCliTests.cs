using System.Text;
using Google.Protobuf;
using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Cli.Tests;

/// <summary>
/// Issue 12, one test per row of its table (and the extras below it): bad input gives one `onnxslim: error:` line
/// and exit 2, never exit 3; a failed run leaves no file; no output lands on an input or on another output.
/// </summary>
public sealed class BadInputCliTests
{
    /// <summary>input [1,3,8,8] → Conv(8) → BatchNorm → Relu → Conv(8) → Relu → GlobalAveragePool: small enough to prune in a second.</summary>
    private static GraphBuilder Net(long ir = 8)
    {
        var b = new GraphBuilder(seed: 11);
        b.Build().IrVersion = ir;
        string x = b.Input("input", 1, 3, 8, 8);
        string h = b.Relu(b.BatchNorm(b.Conv(x, 3, 8), 8));
        h = b.Relu(b.Conv(h, 8, 8));
        b.Output(b.Node("GlobalAveragePool", [h]), 1, 8, 1, 1);
        return b;
    }

    /// <summary>A fresh folder holding <paramref name="b"/> as model.onnx.</summary>
    private static (string Dir, string Model) Folder(GraphBuilder b)
    {
        string dir = Fixtures.TempDir();
        return (dir, b.Save(Path.Combine(dir, "model.onnx")));
    }

    private static string[] Listing(string dir) =>
        [.. Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(dir, p)).Order()];

    /// <summary>Exit 2, one error line (progress lines aside), no stack trace, and the folder exactly as before.</summary>
    private static void Refused(string dir, string expected, params string[] args)
    {
        var before = Listing(dir).ToDictionary(p => p, p => File.Exists(Path.Combine(dir, p)) ? Convert.ToHexString(File.ReadAllBytes(Path.Combine(dir, p))) : "dir");
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        var errors = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("onnxslim: ") || l.StartsWith("onnxslim: error:")).ToList();
        string error = Assert.Single(errors);
        Assert.StartsWith("onnxslim: error:", error);
        Assert.Contains(expected, error);
        Assert.DoesNotContain("internal error", error);
        Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
        var after = Listing(dir).ToDictionary(p => p, p => File.Exists(Path.Combine(dir, p)) ? Convert.ToHexString(File.ReadAllBytes(Path.Combine(dir, p))) : "dir");
        Assert.Equal(before, after);
    }

    private static void Ok(CliRunner.Result r) => Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");

    [Fact]
    public void Row_non_finite_conv_weights_are_refused_by_prune_and_analyze_naming_the_layer()
    {
        var b = Net();
        var conv = b.Graph.Node.Last(n => n.OpType == "Conv");
        var w = b.Graph.Initializer.First(t => t.Name == conv.Input[1]);
        var values = new Tensor(w).ToFloats();
        values[3] = float.NaN;
        w.RawData = Tensor.FromFloats(w.Name, [.. w.Dims], values).Proto.RawData;
        var (dir, model) = Folder(b);
        string expected = $"Conv '{conv.Name}' weight '{w.Name}' holds NaN";
        Refused(dir, expected, model, "-o", Path.Combine(dir, "out.onnx"), "--no-bench");
        Refused(dir, expected, "analyze", model, "--plot", Path.Combine(dir, "p.svg"));
    }

    [Fact]
    public void Row_plan_files_with_null_groups_or_keep_are_refused_with_the_json_path()
    {
        var (dir, model) = Folder(Net());
        string plan = Path.Combine(dir, "plan.json");
        File.WriteAllText(plan, """{"format": "onnxslim-plan/1", "groups": null}""");
        Refused(dir, "$.groups must be an array, got null", model, "-o", Path.Combine(dir, "out.onnx"), "--plan-in", plan, "--no-bench");
        File.WriteAllText(plan, """{"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": ["x"], "channels": 8, "keep": null}]}""");
        Refused(dir, "$.groups[0].keep must be an array, got null", model, "-o", Path.Combine(dir, "out.onnx"), "--plan-in", plan, "--no-bench");
        File.WriteAllText(plan, """{"format": "onnxslim-plan/1", "groups": [null]}""");
        Refused(dir, "$.groups[0] must be a group object", model, "-o", Path.Combine(dir, "out.onnx"), "--plan-in", plan, "--no-bench");
    }

    [Fact]
    public void Row_huge_shapes_from_the_command_line_or_the_model_are_refused()
    {
        var (dir, model) = Folder(Net());
        Refused(dir, "more than 134217728 elements", model, "-o", Path.Combine(dir, "out.onnx"), "--no-bench", "--shape", "input=1000000000,3,8,8");
        Refused(dir, "more than 134217728 elements", "inspect", model, "--shape", "input=1,3,100000,100000");

        var b = Net();
        b.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue = 1_000_000_000;
        (dir, model) = Folder(b);
        Refused(dir, "input 'input'", model, "-o", Path.Combine(dir, "out.onnx"), "--no-bench");
        Refused(dir, "input 'input'", "inspect", model);
    }

    [Fact]
    public void Row_npy_headers_with_huge_or_non_numeric_shapes_are_refused()
    {
        var (dir, model) = Folder(Net());
        foreach (var shape in new[] { "(99999999999, 99999999999)", "(N, 3, 8, 8)", "[...]", "(2, 4611686018427387904)" })
        {
            string npy = Path.Combine(dir, "x.npy");
            var header = Encoding.ASCII.GetBytes($"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}\n");
            File.WriteAllBytes(npy, [0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, 0, .. header, .. new byte[64]]);
            Refused(dir, "x.npy", "validate", model, model, "--inputs", npy);
            Refused(dir, "x.npy", model, "-o", Path.Combine(dir, "out.onnx"), "--calib", npy, "--no-bench");
        }
    }

    [Fact]
    public void Row_external_data_offsets_that_are_not_numbers_are_refused()
    {
        var b = Net();
        var w = b.Graph.Initializer.First(t => t.Dims.Count == 4);
        var (dir, _) = Folder(Net());
        File.WriteAllBytes(Path.Combine(dir, "weights.bin"), w.RawData.ToByteArray());
        w.ClearRawData();
        w.DataLocation = TensorProto.Types.DataLocation.External;
        w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
        w.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "abc" });
        string model = b.Save(Path.Combine(dir, "model.onnx"));
        Refused(dir, "offset 'abc'", "inspect", model, "--groups", "--json");
        Refused(dir, "offset 'abc'", model, "-o", Path.Combine(dir, "out.onnx"), "--no-bench", "--no-validate");
    }

    [Fact]
    public void Row_plan_out_or_report_into_a_missing_folder_or_onto_a_folder_writes_nothing()
    {
        var (dir, model) = Folder(Net());
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        string output = Path.Combine(dir, "out.onnx");
        Refused(dir, "does not exist", model, "-o", output, "--no-bench", "--plan-out", Path.Combine(dir, "missing", "p.json"));
        Refused(dir, "is a directory", model, "-o", output, "--no-bench", "--plan-out", Path.Combine(dir, "sub"));
        Refused(dir, "does not exist", model, "-o", output, "--no-bench", "--report", Path.Combine(dir, "missing", "r.json"));
        Refused(dir, "is a directory", model, "-o", Path.Combine(dir, "sub") + "/", "--no-bench");
    }

    [Fact]
    public void Row_input_through_a_symlink_to_the_output_path_is_refused()
    {
        var (dir, real) = Folder(Net());
        string link = Path.Combine(dir, "link.onnx");
        File.CreateSymbolicLink(link, "model.onnx");
        Refused(dir, "is the input model", link, "-o", real, "--no-bench");
        Refused(dir, "is the input model", real, "-o", link, "--no-bench");
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        Refused(dir, "is the input model", real, "-o", Path.Combine(dir, "sub", "..", "model.onnx"), "--no-bench");
        Refused(dir, "only in case", real, "-o", Path.Combine(dir, "MODEL.onnx"), "--no-bench");
    }

    [Fact]
    public void Row_plan_out_or_report_at_the_input_model_or_a_side_input_is_refused()
    {
        var (dir, model) = Folder(Net());
        string output = Path.Combine(dir, "out.onnx");
        Refused(dir, "--plan-out", model, "-o", output, "--no-bench", "--plan-out", model);
        string json = Path.Combine(dir, "model.json");
        File.Copy(model, json);
        Refused(dir, "--report", json, "-o", output, "--no-bench", "--report", json);
        string plan = Path.Combine(dir, "plan.json");
        Ok(CliRunner.Run(model, "-o", output, "--no-bench", "--plan-out", plan));
        File.Delete(output);
        Refused(dir, "is --plan-in", model, "-o", output, "--no-bench", "--plan-in", plan, "--plan-out", plan);
    }

    [Fact]
    public void Row_outputs_that_are_the_same_file_are_refused()
    {
        var (dir, model) = Folder(Net());
        string output = Path.Combine(dir, "out.onnx");
        Refused(dir, "are the same file", model, "-o", output, "--no-bench", "--plan-out", output);
        Refused(dir, "are the same file", model, "-o", Path.Combine(dir, "out.json"), "--no-bench", "--report", Path.Combine(dir, "out.json"));
        Refused(dir, "are the same file", model, "-o", output, "--no-bench", "--plan-out", Path.Combine(dir, "same.json"), "--report", Path.Combine(dir, "same.json"));
    }

    [Fact]
    public void Row_ir3_models_with_initializers_listed_as_inputs_give_valid_outputs()
    {
        var b = Net(ir: 3);
        b.Build().OpsetImport[0].Version = 9;
        foreach (var t in b.Graph.Initializer.ToList())
        {
            var shape = new TensorShapeProto();
            foreach (long d in t.Dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            b.Graph.Input.Add(new ValueInfoProto { Name = t.Name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = t.DataType, Shape = shape } } });
        }
        var (dir, model) = Folder(b);
        string output = Path.Combine(dir, "out.onnx");
        Ok(CliRunner.Run(model, "-o", output, "--no-bench", "--cr", "0.5"));
        var written = ModelProto.Parser.ParseFrom(File.ReadAllBytes(output));
        var inputs = written.Graph.Input.ToDictionary(i => i.Name);
        Assert.All(written.Graph.Initializer, t => Assert.Equal(t.Dims, inputs[t.Name].Type.TensorType.Shape.Dim.Select(d => d.DimValue)));
        Assert.Contains(written.Graph.Initializer, t => t.Dims.Count == 4 && t.Dims[0] < 8);
        using var runner = new ModelRunner(File.ReadAllBytes(output));
        Assert.Equal(["input"], runner.Inputs.Keys.Where(k => written.Graph.Initializer.All(t => t.Name != k)));
        runner.Run(InputGenerator.Generate(runner.Inputs, InputShapes.Resolve(runner.Inputs, []), seed: 1));
    }

    [Fact]
    public void Row_a_graph_with_no_outputs_is_refused_even_without_validation()
    {
        var b = Net();
        b.Graph.Output.Clear();
        var (dir, model) = Folder(b);
        Refused(dir, "no outputs", model, "-o", Path.Combine(dir, "out.onnx"), "--no-validate");
        Refused(dir, "no outputs", "inspect", model);
    }

    [Fact]
    public void Row_a_2_62_length_prefix_before_a_valid_file_is_refused_by_every_command()
    {
        var (dir, _) = Folder(Net());
        byte[] prefix = [0x3A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]; // field 7 (graph), length 2^62
        string model = Path.Combine(dir, "model.onnx");
        File.WriteAllBytes(model, [.. prefix, .. File.ReadAllBytes(model)]);
        Refused(dir, "declares 4611686018427387904 bytes", model, "-o", Path.Combine(dir, "out.onnx"), "--no-bench");
        Refused(dir, "declares", "inspect", model);
        Refused(dir, "declares", "analyze", model);
        Refused(dir, "declares", "bench", model, "--runs", "1");
        Refused(dir, "declares", "validate", model, model);
    }

    [Fact]
    public void Enum_options_given_as_numbers_are_refused_by_every_command()
    {
        var (dir, model) = Folder(Net());
        string output = Path.Combine(dir, "out.onnx");
        Refused(dir, "--target", model, "-o", output, "--target", "2");
        Refused(dir, "--allocation", model, "-o", output, "--allocation", "1");
        Refused(dir, "--criterion", model, "-o", output, "--criterion", "1");
        Refused(dir, "--compensation", model, "-o", output, "--compensation", "1");
        Refused(dir, "provider", model, "-o", output, "--provider", "1");
        Refused(dir, "--target", "analyze", model, "--target", "2");
        Refused(dir, "provider", "bench", model, "--provider", "0");
    }

    [Fact]
    public void Empty_output_names_and_response_file_syntax_are_plain_errors()
    {
        var (dir, model) = Folder(Net());
        Refused(dir, "-o needs a file name", model, "-o", "", "--no-bench");
        Refused(dir, "--plan-out needs a file name", model, "-o", Path.Combine(dir, "out.onnx"), "--plan-out", "", "--no-bench");
        Refused(dir, "--plot", "analyze", model, "--plot", "");
        // `@model.onnx` is a file name, not a response file whose words replace it.
        File.WriteAllText(Path.Combine(dir, "args.rsp"), model + "\n");
        Refused(dir, "not found", "validate", "@" + Path.Combine(dir, "args.rsp"), model);
    }

    [Fact]
    public void Bench_reports_an_onnx_runtime_failure_as_bad_input()
    {
        var b = Net();
        b.Graph.Node.First(n => n.OpType == "Conv").Attribute.First(a => a.Name == "group").I = 0;
        var (dir, model) = Folder(b);
        Refused(dir, "ONNX Runtime", "bench", model, "--runs", "1", "--warmup", "0");
        (dir, model) = Folder(Net());
        Refused(dir, "ONNX Runtime", "bench", model, "--runs", "1", "--warmup", "0", "--shape", "input=1,2,8,8");
    }

    [Fact]
    public void A_failure_after_the_work_leaves_no_file_and_keeps_what_was_there()
    {
        var (dir, model) = Folder(Net());
        string output = Path.Combine(dir, "out.onnx");
        File.WriteAllText(output, "old output");
        var before = Listing(dir);
        // Agreement 1.0 cannot be met at --cr 0.9: exit 1 after pruning, with a plan and a report pending.
        var r = CliRunner.Run(model, "-o", output, "--cr", "0.9", "--no-bench", "--min-agreement", "1", "--compensation", "none",
            "--plan-out", Path.Combine(dir, "p.json"), "--report", Path.Combine(dir, "r.json"));
        Assert.True(r.ExitCode == 1, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Equal(before, Listing(dir));
        Assert.Equal("old output", File.ReadAllText(output));
    }

    [Fact]
    public void Weights_in_float_data_prune_like_weights_in_raw_data()
    {
        var b = Net();
        foreach (var t in b.Graph.Initializer)
        {
            var v = new Tensor(t).ToFloats();
            t.ClearRawData();
            t.FloatData.Add(v);
        }
        var (dir, model) = Folder(b);
        var (rawDir, raw) = Folder(Net());
        string fromFloats = Path.Combine(dir, "out.onnx"), fromRaw = Path.Combine(rawDir, "out.onnx");
        Ok(CliRunner.Run(model, "-o", fromFloats, "--no-bench"));
        Ok(CliRunner.Run(raw, "-o", fromRaw, "--no-bench"));
        // The same channels kept and the same values: the two outputs answer alike.
        Ok(CliRunner.Run("validate", fromRaw, fromFloats, "--min-cosine", "0.9999999"));
    }

    [Fact]
    public void External_data_output_is_written_beside_the_model_on_request()
    {
        string dir = Fixtures.TempDir();
        string output = Path.Combine(dir, "slim.onnx");
        var r = CliRunner.Run(Fixtures.DemoModel, "-o", output, "--no-bench", "--external-data", "--json");
        Ok(r);
        Assert.True(File.Exists(output + ".data"));
        Assert.Contains("\"output_data\":", r.Stdout);
        using (var model = OnnxModel.Load(output)) Assert.True(model.HasExternalData);
        // Read back from another folder: the data file is found beside the model, not in the working folder.
        Ok(CliRunner.Run("validate", Fixtures.DemoModel, output));
        Ok(CliRunner.Run("inspect", output));
        // The data file is an output like the others: never another output, never an input.
        string copy = Path.Combine(dir, "m.onnx");
        File.Copy(Fixtures.DemoModel, copy);
        Refused(dir, "are the same file", copy, "-o", Path.Combine(dir, "x.onnx"), "--external-data", "--plan-out", Path.Combine(dir, "x.onnx.data"), "--no-bench");
        File.Move(copy, Path.Combine(dir, "x.onnx.data"));
        Refused(dir, "is the input model", Path.Combine(dir, "x.onnx.data"), "-o", Path.Combine(dir, "x.onnx"), "--external-data", "--no-bench");
    }

    [Fact]
    public void Outputs_commit_together_or_not_at_all()
    {
        string dir = Fixtures.TempDir();
        string a = Path.Combine(dir, "a.txt"), b = Path.Combine(dir, "b.txt");
        File.WriteAllText(a, "old a");
        var outputs = new OutputFiles();
        outputs.AddText(a, "new a");
        outputs.Add(b, _ => throw new IOException("disk full"));
        Assert.Throws<IOException>(outputs.Commit);
        Assert.Equal(["a.txt"], Listing(dir));
        Assert.Equal("old a", File.ReadAllText(a));

        var again = new OutputFiles();
        again.AddText(a, "new a");
        again.AddText(b, "new b");
        again.Commit();
        Assert.Equal(["a.txt", "b.txt"], Listing(dir));
        Assert.Equal("new a", File.ReadAllText(a));
        Assert.Throws<CliError>(() => again.AddText(Path.Combine(dir, "sub", "..", "b.txt"), "twice"));
    }
}
