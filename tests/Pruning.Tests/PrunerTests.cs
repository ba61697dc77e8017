using OnnxSlim.Calibration;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Pruning.Tests;

/// <summary>The library API: pruning in memory, no paths, typed options, progress and errors.</summary>
public sealed class PrunerTests
{
    private static OnnxModel ConvNet(int batch = -1)
    {
        var b = new GraphBuilder(seed: 3);
        string x = b.Input("x", batch, 3, 16, 16);
        string h = b.Relu(b.Conv(x, 3, 32));
        h = b.Relu(b.Conv(h, 32, 32));
        h = b.Node("GlobalAveragePool", [h]);
        string y = b.Node("Flatten", [h]);
        y = b.Node("Gemm", [y, b.Init("fc", [10, 32]), b.Init("fcb", [10])], ("transB", 1L));
        b.Output(y, batch, 10);
        return b.Model();
    }

    /// <summary>A recognizer's head: per-position class scores [N, 128, 12] from a Softmax over the last axis.</summary>
    private static OnnxModel SequenceNet()
    {
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", -1, 3, 8, 16);
        string h = b.Relu(b.Conv(x, 3, 32));
        h = b.Conv(h, 32, 12, k: 1);
        h = b.Node("Reshape", [h, b.Ints("shape", 0, 12, -1)]);
        h = b.Node("Transpose", [h], ("perm", new long[] { 0, 2, 1 }));
        b.Output(b.Node("Softmax", [h], ("axis", 2L)), -1, 128, 12);
        return b.Model();
    }

    [Fact]
    public void A_sequence_of_class_scores_gets_top1_agreement_per_position_and_the_gate_says_so()
    {
        using var model = SequenceNet();
        using var result = Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false });
        var agreement = result.Summary.Agreement!;
        Assert.InRange(agreement.Top1Agreement!.Value, 0.0, 0.9999);
        Assert.True(agreement.Top1PerPosition);
        Assert.Contains("per position", agreement.Describe());
        var e = Assert.Throws<ValidationFailedException>(() => Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false, MinAgreement = 1.0 }));
        Assert.Contains("top-1 agreement per position", e.Message);
    }

    [Fact]
    public void A_model_built_in_memory_is_pruned_in_memory_and_the_original_is_untouched()
    {
        using var model = ConvNet();
        byte[] before = model.ToBytes();
        var stages = new List<PruneProgress>();
        using var result = Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false, Progress = stages.Add });

        Assert.Equal(before, model.ToBytes());
        Assert.InRange(result.Summary.AchievedReduction, 0.45, 0.55);
        Assert.True(result.Summary.After.Macs < result.Summary.Before.Macs);
        Assert.NotNull(result.Summary.Agreement);
        var conv = result.Model.Graph.Nodes.First(n => n.OpType == "Conv");
        Assert.True(result.Model.Graph.ResolveWeight(conv.Inputs[1])!.Tensor.Dims[0] < 32);
        Assert.Contains(result.Plan.Groups, g => g.Keep.Count < g.Channels);
        // Every stage that started also finished, in order.
        var finished = stages.Where(p => p.Finished).Select(p => p.Stage).ToList();
        Assert.Equal(stages.Where(p => !p.Finished && p.Total == 0).Select(p => p.Stage).ToList(), finished);
        Assert.Contains("validate on ONNX Runtime", finished);

        using var runner = new ModelRunner(result.Model.ToBytes());
        var output = Assert.Single(runner.Run(InputGenerator.Generate(runner.Inputs, InputShapes.Resolve(runner.Inputs, [], 2), seed: 1)));
        Assert.Equal([2L, 10], output.Shape);
    }

    [Fact]
    public void A_model_handed_over_is_pruned_itself_to_the_same_bytes_and_figures()
    {
        // Without timing no copy of the original is kept; with it one is (the timing runs the original): both as Prune.
        foreach (bool time in new[] { false, true })
        {
            using var kept = ConvNet();
            using var copied = Pruner.Prune(kept, new PruneOptions { Ratio = 0.5, Time = time, TimedRuns = 1 });
            var model = ConvNet();
            using var result = Pruner.PruneInPlace(model, new PruneOptions { Ratio = 0.5, Time = time, TimedRuns = 1 });
            Assert.Same(model, result.Model);
            Assert.Equal(copied.Model.ToBytes(), result.Model.ToBytes());
            Assert.Equal(copied.Summary.Before.FileBytes, result.Summary.Before.FileBytes);
            Assert.Equal(copied.Summary.After.Macs, result.Summary.After.Macs);
            Assert.Equal(copied.Summary.Agreement!.Cosine, result.Summary.Agreement!.Cosine);
            Assert.Equal(time, result.Summary.Before.LatencyBatch1Ms is not null);
        }
    }

    [Fact]
    public void A_fixed_batch_model_reads_its_pruned_cost_from_the_validation_run()
    {
        // Batch fixed at 1: validation feeds the shape probe's inputs, so its reference is the probe's run and the
        // pruned model's shapes come from the validation run instead of a second probe; the figures are the probe's.
        using var model = ConvNet(batch: 1);
        using var validated = Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false });
        using var probed = Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false, Validate = false });
        Assert.Equal(probed.Model.ToBytes(), validated.Model.ToBytes());
        Assert.Equal(probed.Summary.After.Macs, validated.Summary.After.Macs);
        Assert.InRange(validated.Summary.After.Macs, 1, validated.Summary.Before.Macs - 1);
        Assert.True(validated.Summary.Agreement!.Cosine < 1);
    }

    [Fact]
    public void Only_leading_sizes_are_taken_from_the_original()
    {
        var pruned = new Dictionary<string, long[]> { ["boxes"] = [100, 4], ["feat"] = [1, 16, 8, 8], ["new"] = [7] };
        var original = new Dictionary<string, long[]> { ["boxes"] = [3, 4], ["feat"] = [1, 32, 8, 8] };
        var sizes = DataDependentSizes.AtOriginal(pruned, original, out var changed);
        Assert.Equal([3L, 4], sizes["boxes"]);
        Assert.Equal([1L, 16, 8, 8], sizes["feat"]); // a pruned channel axis stays pruned
        Assert.Equal([7L], sizes["new"]);
        Assert.Equal(("boxes", 100L, 3L), Assert.Single(changed));
    }

    [Fact]
    public void A_plan_replays_to_the_same_model()
    {
        using var model = ConvNet();
        using var first = Pruner.Prune(model, new PruneOptions { Ratio = 0.4, Target = BudgetTarget.Params, Validate = false });
        var plan = PlanFile.Parse(first.Plan.ToJson(), "in memory");
        using var replay = Pruner.Prune(model, new PruneOptions { Plan = plan, Validate = false });
        Assert.Equal(first.Model.ToBytes(), replay.Model.ToBytes());
    }

    [Theory]
    [InlineData(0.99, "Ratio")]
    [InlineData(-0.1, "Ratio")]
    [InlineData(double.NaN, "Ratio")]
    public void Bad_option_values_are_argument_exceptions_naming_the_option(double ratio, string param)
    {
        using var model = ConvNet();
        var e = Assert.ThrowsAny<ArgumentException>(() => Pruner.Prune(model, new PruneOptions { Ratio = ratio }));
        Assert.Equal(param, e.ParamName);
        Assert.Contains(ratio.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
    }

    [Fact]
    public void Refit_without_calibration_and_unmatched_ignore_patterns_are_refused()
    {
        using var model = ConvNet();
        Assert.Equal("Calibration", Assert.ThrowsAny<ArgumentException>(() =>
            Pruner.Prune(model, new PruneOptions { Criterion = SelectionCriterion.Refit })).ParamName);
        var e = Assert.Throws<PruningException>(() => Pruner.Prune(model, new PruneOptions { Ignore = ["no_such_node*"], Validate = false }));
        Assert.Contains("no_such_node*", e.Message);
    }

    [Fact]
    public void Latency_target_on_cuda_is_refused_before_any_work()
    {
        // Refused even where CUDA cannot run: the option pair is wrong whatever the machine.
        using var model = ConvNet();
        var e = Assert.ThrowsAny<ArgumentException>(() =>
            Pruner.Prune(model, new PruneOptions { Target = BudgetTarget.Latency, Provider = Provider.Cuda }));
        Assert.Equal("Target", e.ParamName);
        Assert.Contains("CUDA profiler times kernel launches", e.Message);
        // The same target on the CPU provider, and MACs on CUDA, pass the check.
        new PruneOptions { Target = BudgetTarget.Latency }.Check();
        new PruneOptions { Provider = Provider.Cuda }.Check();
    }

    [Fact]
    public void A_calibrated_run_keeps_native_memory_only_when_asked_and_its_maps_are_large()
    {
        // x [3, 128, 256] → Conv 16 → Relu → Conv 8: its largest value is 16 × 128 × 256 floats, 2 MiB a sample (the threshold).
        var b = new GraphBuilder(seed: 8);
        string h = b.Input("x", -1, 3, 128, 256);
        h = b.Node("Relu", [b.Conv(h, 3, 16)]);
        b.Output(b.Conv(h, 16, 8), -1, 8, 128, 256);
        using var large = b.Model();
        var samples = ModelOps.Floats("x", [6, 3, 128, 256], new GraphBuilder(seed: 9).Normal(6 * 3 * 128 * 256));
        List<string> Log(OnnxModel model, NamedTensor x, bool keep)
        {
            var lines = new List<string>();
            using var result = Pruner.Prune(model, new PruneOptions
            {
                Ratio = 0.3, Time = false, HeldOutSamples = 2, KeepNativeMemory = keep, Calibration = CalibrationData.FromTensors([x]), Log = lines.Add,
            });
            return lines;
        }
        Assert.DoesNotContain(Log(large, samples, keep: false), l => l.StartsWith("native heap"));
        var kept = Log(large, samples, keep: true);
        Assert.Contains(kept, l => l.StartsWith("native heap: ") && l.Contains("(largest value 2.0 MiB a sample)"));
        // Kept for the plan's passes over the original, handed back before the reconstruction's, after the rewrite.
        int handedBack = kept.FindIndex(l => l.StartsWith("native heap: ") && l.Contains("MiB handed back before the reconstruction"));
        int rewritten = kept.FindIndex(l => l.StartsWith("rewrite graph"));
        Assert.True(rewritten >= 0 && handedBack > rewritten, string.Join("\n", kept));
        // Samples of 2 MiB (x [8, 256, 256]) count as values too, though every map the model computes is smaller.
        var w = new GraphBuilder(seed: 10);
        string y = w.Input("x", -1, 8, 256, 256);
        y = w.Node("Relu", [w.Conv(y, 8, 4, k: 1)]);
        w.Output(w.Conv(y, 4, 2, k: 1), -1, 2, 256, 256);
        using var wide = w.Model();
        var wideSamples = ModelOps.Floats("x", [6, 8, 256, 256], new GraphBuilder(seed: 11).Normal(6 * 8 * 256 * 256));
        Assert.Contains(Log(wide, wideSamples, keep: true), l => l.StartsWith("native heap: ") && l.Contains("(largest value 2.0 MiB a sample)"));
        // The demo model's maps are small: asked, it still leaves the heap as it is.
        using var small = OnnxModel.Load(Fixtures.DemoModel);
        var calib = NpyFile.Read(Fixtures.CalibX);
        var all = new NamedTensor("input", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, calib.Shape, calib.Floats!);
        Assert.DoesNotContain(Log(small, all.Rows(0, 24), keep: true), l => l.StartsWith("native heap"));
    }

    [Fact]
    public void Held_out_samples_never_change_the_pruned_model()
    {
        using var model = OnnxModel.Load(Fixtures.DemoModel);
        var calib = NpyFile.Read(Fixtures.CalibX);
        var all = new NamedTensor("input", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, calib.Shape, calib.Floats!);
        NamedTensor Concat(NamedTensor a, NamedTensor b) =>
            a with { Shape = [a.Shape[0] + b.Shape[0], .. a.Shape[1..]], Data = ((float[])a.Data).Concat((float[])b.Data).ToArray() };
        // The same 48 samples to fit, then two different sets of 16 to hold out.
        var fit = all.Rows(0, 48);
        var first = Concat(fit, all.Rows(48, 16));
        var second = Concat(fit, all.Rows(100, 16));
        var options = new PruneOptions { Ratio = 0.5, HeldOutSamples = 16, Time = false };
        using var a = Pruner.Prune(model, options with { Calibration = CalibrationData.FromTensors([first]) });
        using var b = Pruner.Prune(model, options with { Calibration = CalibrationData.FromTensors([second]) });
        Assert.Equal(a.Model.ToBytes(), b.Model.ToBytes());
        Assert.Equal("16 held-out calibration samples, not used for ranking or fitting", a.Summary.AgreementInputs);
        Assert.Contains("on 48 samples", a.Summary.Recovery);
        // And they do measure something: the two held-out sets give different agreement.
        Assert.NotEqual(a.Summary.Agreement!.Cosine, b.Summary.Agreement!.Cosine);
        Assert.DoesNotContain(a.Summary.Warnings, w => w.Contains("too few to stand for accuracy"));
    }

    /// <summary>
    /// The agreement before reconstruction runs beside the reconstruction, which re-fits the weights meanwhile: it must still be
    /// the sliced model's, as an independent run of that model (the same plan without data) on the held-out samples says.
    /// </summary>
    [Fact]
    public void The_agreement_before_reconstruction_is_the_sliced_models_though_it_runs_beside_the_refit()
    {
        using var model = OnnxModel.Load(Fixtures.DemoModel);
        var calib = NpyFile.Read(Fixtures.CalibX);
        var samples = new NamedTensor("input", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, calib.Shape, calib.Floats!).Rows(0, 64);
        using var calibrated = Pruner.Prune(model, new PruneOptions { Ratio = 0.5, HeldOutSamples = 16, Time = false, Calibration = CalibrationData.FromTensors([samples]) });
        using var sliced = Pruner.Prune(model, new PruneOptions { Plan = PlanFile.Parse(calibrated.Plan.ToJson(), "in memory"), Validate = false });
        Assert.NotEqual(sliced.Model.ToBytes(), calibrated.Model.ToBytes());
        IReadOnlyList<NamedTensor> heldOut = [samples.Rows(48, 16)];
        using var original = new ModelRunner(model.ToBytes());
        using var slicedRunner = new ModelRunner(sliced.Model.ToBytes());
        var expected = OutputComparison.Compare(original.Run(heldOut), slicedRunner.Run(heldOut));
        var before = calibrated.Summary.AgreementBeforeRecovery!;
        Assert.Equal(expected.Cosine, before.Cosine!.Value, 5);
        Assert.Equal(expected.MaxAbsError, before.MaxAbsError!.Value, 3);
        Assert.True(calibrated.Summary.Agreement!.Cosine > before.Cosine + 1e-4, $"the re-fit changed nothing to compare: {before.Cosine} → {calibrated.Summary.Agreement.Cosine}");
    }

    /// <summary>An agreement on one to three held-out samples (top-1 0 or 100 % on one) is said to be no measure of accuracy.</summary>
    [Fact]
    public void An_agreement_on_few_held_out_samples_is_flagged()
    {
        using var model = OnnxModel.Load(Fixtures.DemoModel);
        var calib = NpyFile.Read(Fixtures.CalibX);
        var all = new NamedTensor("input", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, calib.Shape, calib.Floats!);
        using var result = Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false, Calibration = CalibrationData.FromTensors([all.Rows(0, 16)]) });
        Assert.Equal("2 held-out calibration samples, not used for ranking or fitting", result.Summary.AgreementInputs);
        Assert.Contains("the agreement is read on 2 held-out calibration samples only, too few to stand for accuracy: give 32 or more calibration samples, or hold out more with --holdout",
            result.Summary.Warnings);
    }
}
