using OnnxSlim.TestSupport;
using OnnxSlim.Runtime;

namespace OnnxSlim.Runtime.Tests;

public sealed class RuntimeTests
{
    [Fact]
    public void The_heap_policy_is_set_through_glibc_and_sessions_still_run()
    {
        // This suite runs on Linux with glibc (Debian), where mallopt accepts each setting; elsewhere nothing is changed.
        Assert.Equal(OperatingSystem.IsLinux(), NativeHeap.KeepFreedMemory());
        using var runner = new ModelRunner(File.ReadAllBytes(Fixtures.BnResnet));
        var inputs = InputGenerator.Generate(runner.Inputs, InputShapes.Resolve(runner.Inputs, [], batch: 4), seed: 2);
        Assert.Equal(1.0, OutputComparison.Compare(runner.Run(inputs), runner.Run(inputs)).Cosine, 9);
        // Handing the kept memory back leaves a working heap behind.
        Assert.Equal(OperatingSystem.IsLinux(), NativeHeap.ReturnFreedMemory());
        Assert.Equal(1.0, OutputComparison.Compare(runner.Run(inputs), runner.Run(inputs)).Cosine, 9);
    }

    [Fact]
    public void A_session_without_prepacked_weights_gives_the_same_outputs()
    {
        var bytes = File.ReadAllBytes(Fixtures.BnResnet);
        using var packed = new ModelRunner(bytes, spinning: false);
        using var unpacked = new ModelRunner(bytes, spinning: false, prepack: false);
        var inputs = InputGenerator.Generate(packed.Inputs, InputShapes.Resolve(packed.Inputs, [], batch: 4), seed: 5);
        var same = OutputComparison.Compare(packed.Run(inputs), unpacked.Run(inputs));
        Assert.Equal(1.0, same.Cosine, 6);
        Assert.True(same.MaxAbsError < 1e-3, $"max abs error {same.MaxAbsError}");
    }

    [Fact]
    public void Runs_a_model_and_compares_outputs()
    {
        using var runner = new ModelRunner(File.ReadAllBytes(Fixtures.BnResnet));
        var shapes = InputShapes.Resolve(runner.Inputs, [], batch: 8);
        Assert.Equal(new long[] { 8, 1, 28, 28 }, shapes["input"]);
        var inputs = InputGenerator.Generate(runner.Inputs, shapes, seed: 1);
        var outputs = runner.Run(inputs);
        var logits = Assert.Single(outputs);
        Assert.Equal(new long[] { 8, 10 }, logits.Shape);
        var same = OutputComparison.Compare(outputs, runner.Run(inputs));
        Assert.Equal(1.0, same.Cosine, 9);
        Assert.Equal(0.0, same.MaxAbsError);
        Assert.Equal(1.0, same.Top1Agreement);

        var other = InputGenerator.Generate(runner.Inputs, shapes, seed: 2);
        var differs = OutputComparison.Compare(outputs, runner.Run(other));
        Assert.True(differs.MaxAbsError > 0);
    }

    [Fact]
    public void A_replaceable_weight_is_replaced_for_one_run_only_and_any_other_is_refused()
    {
        var b = new GraphBuilder(seed: 2);
        string x = b.Input("x", 2, 3, 4, 4);
        string w = b.Init("small", [2, 3, 1, 1]); // far below the size shared weights start at
        b.Output(b.Conv(x, 3, 2, k: 1, bias: false, weight: w), 2, 2, 4, 4);
        using var model = b.Model();
        using var runner = new ModelRunner(model, replaceable: new HashSet<string> { w });
        var inputs = new[] { ModelOps.Floats("x", [2, 3, 4, 4], b.Normal(96)) };
        var before = runner.Run(inputs)[0].AsFloats();
        var zero = runner.Run(inputs, new Dictionary<string, float[]> { [w] = new float[6] })[0].AsFloats();
        Assert.All(zero, v => Assert.Equal(0f, v));
        Assert.Equal(before, runner.Run(inputs)[0].AsFloats());
        Assert.Contains("'nope'", Assert.Throws<ArgumentException>(() => runner.Run(inputs, new Dictionary<string, float[]> { ["nope"] = new float[6] })).Message);
        Assert.Contains("5 were given", Assert.Throws<ArgumentException>(() => runner.Run(inputs, new Dictionary<string, float[]> { [w] = new float[5] })).Message);
    }

    [Fact]
    public void Outputs_that_cannot_be_compared_are_named_with_why_and_not_counted()
    {
        NamedTensor T(string name, long[] shape, params float[] values) => new(name, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, shape, values);
        var reference = new[] { T("scores", [2], 0.9f, 0.8f), T("boxes", [2, 1], 1, 2), T("masks", [0]), T("logits", [1, 2], 1, 0), T("gone", [1], 1) };
        var candidate = new[] { T("scores", [3], 0.9f, 0.8f, 0.7f), T("boxes", [2, 1], 1, 2), T("masks", [0]), T("logits", [1, 2], 0, 1) };
        var c = OutputComparison.Compare(reference, candidate);
        Assert.Equal(2, c.Compared);
        Assert.Equal(["'scores' ([2] vs [3])", "'masks' (empty in both)", "'gone' (missing)"], c.NotCompared);
        Assert.Equal(0.0, c.Top1Agreement);

        var none = OutputComparison.Compare([reference[0]], [candidate[0]]);
        Assert.Equal(0, none.Compared);
        Assert.Single(none.NotCompared);
    }

    [Fact]
    public void Top1_agreement_is_read_per_position_under_a_softmax_over_the_last_axis_only()
    {
        // [2 samples, 3 steps, 4 classes]; the candidate's argmax moves at one step of six.
        var scores = new float[24];
        for (int row = 0; row < 6; row++) scores[row * 4 + row % 4] = 1;
        var moved = (float[])scores.Clone();
        moved[4 * 4 + 1] = 2;
        NamedTensor T(float[] v) => new("probs", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [2, 3, 4], v);

        var last = OutputComparison.Compare([T(scores)], [T(moved)], classAxes: new Dictionary<string, long> { ["probs"] = 2 });
        Assert.Equal(5.0 / 6, last.Top1Agreement!.Value, 12);
        Assert.True(last.Top1PerPosition);
        Assert.Equal(last.Top1Agreement, OutputComparison.Compare([T(scores)], [T(moved)], classAxes: new Dictionary<string, long> { ["probs"] = -1 }).Top1Agreement);
        // Another axis, no Softmax named, or an intermediate value: no top-1 for a rank-3 output.
        Assert.Null(OutputComparison.Compare([T(scores)], [T(moved)], classAxes: new Dictionary<string, long> { ["probs"] = 1 }).Top1Agreement);
        Assert.Null(OutputComparison.Compare([T(scores)], [T(moved)]).Top1Agreement);
        Assert.Null(OutputComparison.Compare([T(scores)], [T(moved)], top1: false, classAxes: new Dictionary<string, long> { ["probs"] = 2 }).Top1Agreement);
        // A classifier's [N, K] is counted per sample, as before.
        var flat = new NamedTensor("logits", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [6, 4], scores);
        var c = OutputComparison.Compare([flat], [flat with { Data = moved }]);
        Assert.Equal(5.0 / 6, c.Top1Agreement!.Value, 12);
        Assert.False(c.Top1PerPosition);
    }

    [Theory]
    [InlineData(13, "Softmax", null, -1L)]
    [InlineData(11, "Softmax", null, 1L)]
    [InlineData(9, "Softmax", 2L, 2L)]
    [InlineData(13, "LogSoftmax", 1L, 1L)]
    [InlineData(13, "Sigmoid", null, null)]
    public void Class_axes_are_the_declared_or_default_axes_of_softmax_outputs(long opset, string op, long? axis, long? expected)
    {
        var b = new GraphBuilder(opset: opset);
        string x = b.Input("x", 1, 3, 4);
        string hidden = b.Node("Softmax", [x]);  // not an output: never a class axis
        string y = axis is { } a ? b.Node(op, [b.Node("Relu", [hidden])], ("axis", a)) : b.Node(op, [b.Node("Relu", [hidden])]);
        b.Output(y, 1, 3, 4);
        using var model = b.Model();
        var axes = ClassAxes.Find(model);
        Assert.DoesNotContain(hidden, axes.Keys);
        if (expected is null) Assert.Empty(axes);
        else Assert.Equal(expected, Assert.Single(axes).Value);
    }

    [Fact]
    public void Shape_override_parsing_rejects_bad_values()
    {
        Assert.Equal(new long[] { 1, 3, 480, 640 }, InputShapes.ParseOverride("images=1,3,480,640").Value);
        Assert.Equal("images", InputShapes.ParseOverride("images=1,3,480,640").Key);
        Assert.Throws<ArgumentException>(() => InputShapes.ParseOverride("x=1,-3"));
        Assert.Throws<ArgumentException>(() => InputShapes.ParseOverride("x=a,b"));
    }

    [Fact]
    public void Shape_probe_reports_intermediate_shapes()
    {
        using var model = GraphIO.OnnxModel.Load(Fixtures.BnResnet);
        var convOutputs = model.Graph.Nodes.Where(n => n.OpType == "Conv").Select(n => n.Outputs[0]).ToList();
        var shapes = ShapeProbe.Run(model, convOutputs, ["input=2,1,28,28"]);
        Assert.All(convOutputs, name => Assert.True(shapes.ContainsKey(name), name));
        Assert.Equal(new long[] { 2, 16, 28, 28 }, shapes[convOutputs[0]]);
        Assert.All(convOutputs, name => Assert.Equal(2, shapes[name][0]));
    }

    [Fact]
    public void Shapes_without_data_are_the_shapes_of_a_full_run()
    {
        using var runner = new ModelRunner(File.ReadAllBytes(Fixtures.BnResnet));
        var inputs = InputGenerator.Generate(runner.Inputs, InputShapes.Resolve(runner.Inputs, [], batch: 3), seed: 4);
        var full = runner.Run(inputs);
        var shapes = runner.OutputShapes(inputs);
        Assert.Equal(full.Count, shapes.Count);
        Assert.All(full, t => Assert.Equal(t.Shape, shapes[t.Name]));
        Assert.Equal(new long[] { 3, 10 }, shapes[full[0].Name]);
    }

    [Fact]
    public void Npy_round_trip_and_latency_measurement()
    {
        string path = Path.Combine(Fixtures.TempDir(), "x.npy");
        var data = Enumerable.Range(0, 2 * 1 * 28 * 28).Select(i => (float)Math.Sin(i)).ToArray();
        NpyFile.WriteFloats(path, [2, 1, 28, 28], data);
        var back = NpyFile.Read(path);
        Assert.Equal(new long[] { 2, 1, 28, 28 }, back.Shape);
        Assert.Equal(data, back.Floats);
        var calib = NpyFile.Read(Fixtures.CalibX);
        Assert.Equal(new long[] { 256, 1, 28, 28 }, calib.Shape);

        using var runner = new ModelRunner(File.ReadAllBytes(Fixtures.BnResnet));
        var inputs = new List<NamedTensor> { new("input", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, back.Shape, back.Floats!) };
        var latency = LatencyBenchmark.Measure(runner, inputs, runs: 5, warmup: 1);
        Assert.Equal(5, latency.Runs);
        Assert.Equal(2, latency.Batch);
        Assert.True(latency.MedianMs > 0 && latency.P90Ms >= latency.MedianMs);
    }
}
