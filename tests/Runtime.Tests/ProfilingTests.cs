using OnnxSlim.TestSupport;

namespace OnnxSlim.Runtime.Tests;

/// <summary>The latency target's runtime pieces: profile parsing, single layers, sessions over shared weights.</summary>
public sealed class ProfilingTests
{
    private static string Event(string cat, string name, double ts, double dur, string op = "", string shape = "")
    {
        string output = shape.Length > 0 ? ",\"output_type_shape\":[{\"float\":[" + shape + "]}]" : "";
        return "{\"cat\":\"" + cat + "\",\"name\":\"" + name + "\",\"ts\":" + ts + ",\"dur\":" + dur + ",\"args\":{\"op_name\":\"" + op + "\"" + output + "}}";
    }

    /// <summary>Two runs (one warm-up, two timed): conv 300/500 µs, a reorder 50/50 µs, runs of 400/600 µs.</summary>
    private static readonly string Profile = "[" + string.Join(",",
        Event("Session", "model_run", 0, 1000), Event("Node", "conv_kernel_time", 10, 900, "Conv", "1,8,4,4"),
        Event("Session", "model_run", 2000, 400), Event("Node", "conv_kernel_time", 2010, 300, "Conv", "1,8,4,4"), Event("Node", "ReorderOutput_token_1_kernel_time", 2320, 50, "ReorderOutput"),
        Event("Session", "model_run", 3000, 600), Event("Node", "conv_kernel_time", 3010, 500, "Conv", "1,8,4,4"), Event("Node", "ReorderOutput_token_1_kernel_time", 3520, 50, "ReorderOutput")) + "]";

    [Fact]
    public void ProfileKeepsTimedRunsAndTheirLeastKernelTimes()
    {
        var p = KernelProfile.Parse(Profile, skipRuns: 1);
        var conv = Assert.Single(p.Kernels, k => k.Name == "conv");
        Assert.Equal(0.3, conv.Milliseconds, 9);         // the least of 300 and 500 µs (the warm-up's 900 ignored)
        Assert.Equal([1, 8, 4, 4], conv.OutputShape!);
        Assert.Equal(0.3, p.NodeMilliseconds, 9);        // the reorder is ORT's, not a node of ours
        Assert.Equal([0.3, 0.5], p.NodeMillisecondsPerRun);
        Assert.Equal(0.5, p.RunMilliseconds, 9);         // median of 400 and 600
        Assert.Equal(0.05, p.OutsideKernelsMilliseconds, 9); // 400 − 300 − 50
        Assert.True(KernelProfile.IsReorder("ReorderInput"));
    }

    [Fact]
    public void CpuTimeScalesRunsByWhatTheThreadComputed()
    {
        // The second timed run (600 µs wall) computed only 300 µs: everything in it scales by ½; medians are used then.
        var p = KernelProfile.Parse(Profile, skipRuns: 1, cpuPerRun: [1.0, 0.4, 0.3]);
        Assert.Equal([0.3, 0.25], p.NodeMillisecondsPerRun);
        Assert.Equal(0.275, Assert.Single(p.Kernels, k => k.Name == "conv").Milliseconds, 9);
        var reference = KernelProfile.Parse(Profile, skipRuns: 1);
        Assert.Equal(1, reference.RatioTo(reference), 9);
        Assert.Equal((0.3 / 0.3 + 0.25 / 0.5) / 2, p.RatioTo(reference), 9); // run by run: 1 and ½; their median
    }

    [Fact]
    public void SingleLayerModelsTimeTheirKernel()
    {
        var b = new GraphBuilder();
        string x = b.Input("x", 1, 32, 16, 16);
        b.Output(b.Relu(b.Conv(x, 32, 64)), 1, 64, 16, 16);
        using var model = b.Model();
        var conv = model.Graph.Nodes.Single(n => n.OpType == "Conv");
        var bytes = SingleLayerModel.Build(conv, [1, 16, 16, 16], [48, 16, 3, 3], 48, null, opset: 13, irVersion: 8);
        var profiles = KernelProfiler.RunAlternating([(bytes, [SingleLayerModel.InputOf([1, 16, 16, 16])]), (bytes, [SingleLayerModel.InputOf([1, 16, 16, 16])])],
            Provider.Cpu, threads: 1, warmup: 1, minRounds: 3, minMilliseconds: 0, maxRounds: 3);
        Assert.All(profiles, p => Assert.True(p.NodeMilliseconds > 0));
        Assert.All(profiles, p => Assert.Equal(3, p.NodeMillisecondsPerRun.Length));
        Assert.Contains(profiles[0].Kernels, k => k.OpType is "Conv" or "FusedConv");
        var relu = model.Graph.Nodes.Single(n => n.OpType == "Relu");
        Assert.Throws<ArgumentException>(() => SingleLayerModel.Build(relu, [1], [1], 0, null, 13, 8));
    }

    [Fact]
    public void RunnerOverSharedWeightsGivesTheModelsOutputs()
    {
        // A 64→64 3×3 conv: its 147 KB weight is read from the model's memory, not a copy.
        var b = new GraphBuilder();
        string x = b.Input("x", 1, 64, 8, 8);
        string y = b.Relu(b.Conv(x, 64, 64));
        b.Output(y, 1, 64, 8, 8);
        using var model = b.Model();
        using var copied = new ModelRunner(model.ToBytes(), optimize: false);
        using var shared = new ModelRunner(model);
        Assert.Equal(copied.Inputs.Keys, shared.Inputs.Keys); // the weight is not an input the caller sees
        var inputs = InputGenerator.Generate(copied.Inputs, InputShapes.Resolve(copied.Inputs, []), seed: 3);
        var cmp = OutputComparison.Compare(copied.Run(inputs), shared.Run(inputs));
        Assert.Equal(1, cmp.Compared);
        Assert.True(cmp.MaxRelError < 1e-5, $"max relative error {cmp.MaxRelError}");
        Assert.Throws<InvalidOperationException>(() => shared.RunPrepared(["x"], []));
    }

    [Fact]
    public void ShapeProbeOverSharedWeightsReadsShapesAndThenRunsThePlainModel()
    {
        // The probe's session and the one after it both read the 147 KB weight as an input they must be fed.
        using var model = ConvRelu(out string conv, out string y);
        IReadOnlyList<NamedTensor>? outputs = null;
        IReadOnlyList<string>? names = null;
        bool probeRun = true;
        var shapes = ShapeProbe.Run(model, [conv], [], thenRun: probed =>
        {
            names = probed.OutputNames;
            var inputs = InputGenerator.Generate(probed.Inputs, InputShapes.Resolve(probed.Inputs, []), seed: 1);
            outputs = probed.RunInBatches(inputs, 2, out probeRun);
        });
        Assert.False(probeRun); // seed 1 is not the probe's seed 0: a plain session ran
        Assert.Equal(new long[] { 1, 64, 8, 8 }, shapes[conv]);
        Assert.Equal(new long[] { 1, 64, 8, 8 }, shapes[y]);
        Assert.Equal([y], names);
        var output = Assert.Single(outputs!);
        Assert.Equal(new long[] { 1, 64, 8, 8 }, output.Shape);
        Assert.Contains(output.AsFloats(), v => v > 0);
    }

    /// <summary>x → Conv (64 → 64, a 147 KB weight) → Relu, on 1×64×8×8.</summary>
    private static GraphIO.OnnxModel ConvRelu(out string conv, out string y)
    {
        var b = new GraphBuilder();
        string x = b.Input("x", 1, 64, 8, 8);
        conv = b.Conv(x, 64, 64);
        y = b.Relu(conv);
        b.Output(y, 1, 64, 8, 8);
        return b.Model();
    }

    [Fact]
    public void The_probes_own_outputs_on_its_inputs_are_a_plain_runs()
    {
        // Validation's reference on the probe's inputs reuses the probe's run instead of a second run of the model.
        using var model = ConvRelu(out string conv, out string y);
        IReadOnlyList<NamedTensor>? inputs = null, outputs = null;
        bool probeRun = false;
        ShapeProbe.Run(model, [conv], [], seed: 3, thenRun: probed =>
        {
            inputs = InputGenerator.Generate(probed.Inputs, InputShapes.Resolve(probed.Inputs, []), seed: 3);
            Assert.True(probed.AreProbeInputs(inputs));
            outputs = probed.RunInBatches(inputs, 4, out probeRun);
        });
        Assert.True(probeRun);
        using var plain = new ModelRunner(model);
        var expected = Assert.Single(plain.Run(inputs!));
        var output = Assert.Single(outputs!);
        Assert.True(expected.SameAs(output));
        Assert.Contains(output.AsFloats(), v => v > 0);
        Assert.False(expected.SameAs(expected with { Data = expected.AsFloats().Select(v => v + 1).ToArray() }));
    }
}
