using OnnxSlim.TestSupport;
using Google.Protobuf;
using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;
using OnnxSlim.Runtime;

namespace OnnxSlim.Cli.Tests;

/// <summary>Models whose inputs, outputs, weights and intermediates are float16 or bfloat16.</summary>
public sealed class HalfPrecisionTests
{
    [Fact]
    public void A_float16_model_prunes_to_a_valid_model_that_runs_and_agrees()
    {
        string dir = Fixtures.TempDir();
        string model = Path.Combine(dir, "fp16.onnx"), slim = Path.Combine(dir, "fp16.slim.onnx");
        File.WriteAllBytes(model, ConvNet(DataType.Float16, castAround: false).ToByteArray());

        var r = CliRunner.Run(model, "-o", slim, "--cr", "0.5", "--runs", "3");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("top-1 agreement", r.Stdout);

        using var pruned = OnnxModel.Load(slim);
        Assert.All(pruned.Graph.Initializers.Values.Where(t => t.IsFloating), t => Assert.Equal(DataType.Float16, t.DataType));
        using var runner = new ModelRunner(File.ReadAllBytes(slim));
        var output = Assert.Single(runner.Run(InputGenerator.Generate(runner.Inputs, InputShapes.Resolve(runner.Inputs, [], 2), seed: 3)));
        Assert.IsType<Half[]>(output.Data);
        Assert.Equal([2L, 10], output.Shape);
        Assert.All(output.AsFloats(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void A_float16_model_is_calibrated_from_float32_samples_and_values_past_float16_range_are_refused()
    {
        string dir = Fixtures.TempDir();
        string model = Path.Combine(dir, "fp16.onnx"), slim = Path.Combine(dir, "fp16.slim.onnx");
        File.WriteAllBytes(model, ConvNet(DataType.Float16, castAround: false).ToByteArray());
        var random = new Random(8);
        var values = Enumerable.Range(0, 48 * 3 * 16 * 16).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        string calib = Path.Combine(dir, "calib32.npy");
        NpyFile.WriteFloats(calib, [48, 3, 16, 16], values);

        // Float32 samples for a float16 input are converted; ranking and reconstruction run on the float16 graph.
        var r = CliRunner.Run(model, "-o", slim, "--cr", "0.5", "--calib", calib, "--no-bench");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var fitted = System.Text.RegularExpressions.Regex.Match(r.Stdout, @"calibration reconstruction \((\d+) layers on 42 samples");
        Assert.True(fitted.Success, r.Stdout);
        Assert.True(int.Parse(fitted.Groups[1].Value) >= 2, r.Stdout);
        using (var pruned = OnnxModel.Load(slim))
            Assert.All(pruned.Graph.Initializers.Values.Where(t => t.IsFloating), t => Assert.Equal(DataType.Float16, t.DataType));

        // 70000 is finite in float32 but infinite in float16: one line, exit 2, nothing written.
        values[5 * 768 + 10] = 70000;
        string far = Path.Combine(dir, "far.npy"), output = Path.Combine(dir, "out.onnx");
        NpyFile.WriteFloats(far, [48, 3, 16, 16], values);
        var bad = CliRunner.Run(model, "-o", output, "--calib", far, "--no-bench");
        Assert.Equal(2, bad.ExitCode);
        string error = Assert.Single(bad.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("onnxslim: error:"));
        Assert.Contains("70000 at sample 5, outside the range of the model's float16 input 'x'", error);
        Assert.DoesNotContain("   at ", bad.Stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void A_bfloat16_interface_is_generated_compared_and_timed()
    {
        string dir = Fixtures.TempDir();
        string model = Path.Combine(dir, "bf16.onnx"), slim = Path.Combine(dir, "bf16.slim.onnx");
        File.WriteAllBytes(model, ConvNet(DataType.BFloat16, castAround: true).ToByteArray());

        var r = CliRunner.Run(model, "-o", slim, "--cr", "0.4", "--runs", "3");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var same = CliRunner.Run("validate", model, model, "--min-cosine", "0.999999");
        Assert.True(same.ExitCode == 0, same.Stderr);
    }

    [Fact]
    public void Float_data_converts_to_half_types_with_round_to_nearest()
    {
        var half = (Half[])NamedTensor.FromFloats([1f, 1.0004883f, -2.5f], Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16);
        Assert.Equal([(Half)1f, (Half)1.0004883f, (Half)(-2.5f)], half);
        // 1 + 2^-8 lies half-way between two bfloat16 values: ties go to the even one (1.0); 1 + 3·2^-8 rounds up.
        var bf = new NamedTensor("b", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.BFloat16, [3],
            NamedTensor.FromFloats([1f + 1f / 256, 1f + 3f / 256, float.NaN], Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.BFloat16));
        var back = bf.AsFloats();
        Assert.Equal(1f, back[0]);
        Assert.Equal(1f + 4f / 256, back[1]);
        Assert.True(float.IsNaN(back[2]));
    }

    /// <summary>
    /// Conv(3→16) → Relu → Conv(16→32) → Relu → GlobalAveragePool → Flatten → Gemm(32→10), weights stored in
    /// <paramref name="type"/>; with <paramref name="castAround"/> the body runs in float32 between Casts (bfloat16
    /// has few CPU kernels), otherwise entirely in <paramref name="type"/>.
    /// </summary>
    private static ModelProto ConvNet(int type, bool castAround)
    {
        var random = new Random(5);
        var graph = new GraphProto { Name = "half" };
        int weightType = castAround ? DataType.Float : type;
        string Init(string name, long[] dims)
        {
            long n = dims.Aggregate(1L, (a, b) => a * b), fanIn = dims.Length > 1 ? n / dims[0] : 1;
            var values = Enumerable.Range(0, (int)n).Select(_ => (float)((random.NextDouble() * 2 - 1) * Math.Sqrt(3.0 / fanIn))).ToArray();
            graph.Initializer.Add(Tensor.FromFloats(name, dims, values, weightType).Proto);
            return name;
        }
        void Node(string op, string[] inputs, string output, params AttributeProto[] attributes) =>
            graph.Node.Add(new NodeProto { OpType = op, Name = output + "_node", Input = { inputs }, Output = { output }, Attribute = { attributes } });
        AttributeProto Ints(string name, params long[] v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Ints, Ints = { v } };
        AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };

        string x = "x";
        if (castAround) { Node("Cast", ["x"], "x32", Int("to", DataType.Float)); x = "x32"; }
        Node("Conv", [x, Init("w1", [16, 3, 3, 3]), Init("b1", [16])], "c1", Ints("pads", 1, 1, 1, 1), Ints("kernel_shape", 3, 3));
        Node("Relu", ["c1"], "r1");
        Node("Conv", ["r1", Init("w2", [32, 16, 3, 3]), Init("b2", [32])], "c2", Ints("pads", 1, 1, 1, 1), Ints("kernel_shape", 3, 3));
        Node("Relu", ["c2"], "r2");
        Node("GlobalAveragePool", ["r2"], "g");
        Node("Flatten", ["g"], "f");
        Node("Gemm", ["f", Init("w3", [10, 32]), Init("b3", [10])], castAround ? "y32" : "y", Int("transB", 1));
        if (castAround) Node("Cast", ["y32"], "y", Int("to", type));
        graph.Input.Add(new ValueInfoProto { Name = "x", Type = TensorType(type, -1, 3, 16, 16) });
        graph.Output.Add(new ValueInfoProto { Name = "y", Type = TensorType(type, -1, 10) });
        return new ModelProto { IrVersion = 8, OpsetImport = { new OperatorSetIdProto { Version = 13 } }, Graph = graph };
    }

    private static TypeProto TensorType(int type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d > 0 ? new TensorShapeProto.Types.Dimension { DimValue = d } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        return new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = type, Shape = shape } };
    }
}
