using System.Text.RegularExpressions;
using OnnxSlim.Calibration;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;
using Xunit.Abstractions;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.Pruning.Tests;

/// <summary>
/// Calibrated pruning (ranking, reconstruction) of models that hold float16 or bfloat16 tensors: the sub-models cut
/// out of the graph must declare and feed each value in its own element type, and fitted weights go back in theirs.
/// </summary>
public sealed partial class HalfPrecisionCalibrationTests(ITestOutputHelper output)
{
    /// <summary>How the net stores its weights and what its interface is.</summary>
    public enum Variant
    {
        /// <summary>Inputs, weights, activations and outputs all float16.</summary>
        Float16,
        /// <summary>Float32 inputs and activations, float16 weights each behind a Cast to float32.</summary>
        Float16WeightsBehindCasts,
        /// <summary>Float32 inputs and activations, bfloat16 weights each behind a Cast to float32.</summary>
        BFloat16WeightsBehindCasts,
    }

    private const int Samples = 192, HeldOut = 32;

    /// <summary>
    /// stem Conv(3→16)-BN-Relu, a residual block Conv(16→16)-BN-Relu-Conv(16→16)-BN + skip, Relu, Conv(16→32)-Relu,
    /// GlobalAveragePool, Flatten, Gemm(32→10).
    /// </summary>
    private static OnnxModel Net(Variant variant)
    {
        bool full = variant == Variant.Float16;
        int stored = variant == Variant.BFloat16WeightsBehindCasts ? DataType.BFloat16 : DataType.Float16;
        var b = new GraphBuilder(seed: 11, elementType: full ? DataType.Float16 : DataType.Float);
        // A weight in the stored type; behind a Cast to float32 unless the whole net is float16.
        string W(string stem, long[] dims, float[]? values = null)
        {
            string w = b.Init(stem, dims, values, stored);
            return full ? w : b.Node("Cast", [w], ("to", (long)DataType.Float));
        }
        string Conv(string x, int cin, int cout, int k = 3) =>
            b.Node("Conv", [x, W("w", [cout, cin, k, k]), W("b", [cout], b.Normal(cout, 0.1))],
                ("kernel_shape", new long[] { k, k }), ("pads", new long[] { k / 2, k / 2, k / 2, k / 2 }));
        string Bn(string x, int c) =>
            b.Node("BatchNormalization", [x, W("gamma", [c], b.Uniform(c, 0.5, 1.5)), W("beta", [c], b.Normal(c, 0.2)),
                W("mean", [c], b.Normal(c, 0.2)), W("var", [c], b.Uniform(c, 0.5, 1.5))], ("epsilon", 1e-5f));

        string input = b.Input("x", -1, 3, 12, 12);
        string h = b.Relu(Bn(Conv(input, 3, 16), 16));
        string r = b.Relu(Bn(Conv(h, 16, 16), 16));
        h = b.Relu(b.Node("Add", [Bn(Conv(r, 16, 16), 16), h]));
        h = b.Relu(Conv(h, 16, 32));
        h = b.Node("Flatten", [b.Node("GlobalAveragePool", [h])]);
        string y = b.Node("Gemm", [h, W("fc", [10, 32]), W("fcb", [10], b.Normal(10, 0.1))], ("transB", 1L));
        b.Output(y, -1, 10);
        return b.Model();
    }

    /// <summary>Samples with structure the net can lose: smooth images (neighbouring pixels correlated), seeded.</summary>
    private static float[] Images(int count, int seed)
    {
        var random = new Random(seed);
        var data = new float[count * 3 * 12 * 12];
        for (int n = 0; n < count; n++)
            for (int c = 0; c < 3; c++)
            {
                double fx = random.NextDouble() * 0.6, fy = random.NextDouble() * 0.6, phase = random.NextDouble() * 6.28, level = random.NextDouble() - 0.5;
                for (int i = 0; i < 12; i++)
                    for (int j = 0; j < 12; j++)
                        data[((n * 3 + c) * 12 + i) * 12 + j] = (float)(level + Math.Sin(fx * i + fy * j + phase) + 0.1 * (random.NextDouble() - 0.5));
            }
        return data;
    }

    private static NamedTensor Calibration(OnnxModel model, int count, int seed)
    {
        var type = model.Graph.RuntimeInputs.Single().ElementType == DataType.Float16 ? TensorElementType.Float16 : TensorElementType.Float;
        return new NamedTensor("x", type, [count, 3, 12, 12], NamedTensor.FromFloats(Images(count, seed), type));
    }

    private static PruneOptions Options(NamedTensor calibration, SelectionCriterion criterion) => new()
    {
        Ratio = 0.5,
        Criterion = criterion,
        Calibration = CalibrationData.FromTensors([calibration]),
        HeldOutSamples = HeldOut,
        Time = false,
    };

    private static int FittedLayers(PruneSummary summary)
    {
        var match = FittedPattern().Match(summary.Recovery ?? "");
        Assert.True(match.Success, $"no reconstruction in the summary: '{summary.Recovery}'");
        return int.Parse(match.Groups[1].Value);
    }

    [GeneratedRegex(@"^pass over the pruned model: \d+ nodes from (\d+) cached values")]
    private static partial Regex CachedPattern();

    [GeneratedRegex(@"^calibration reconstruction \((\d+) layers on (\d+) samples")]
    private static partial Regex FittedPattern();

    [Theory]
    [InlineData(Variant.Float16, SelectionCriterion.Refit)]
    [InlineData(Variant.Float16, SelectionCriterion.Gem)]
    [InlineData(Variant.Float16WeightsBehindCasts, SelectionCriterion.Refit)]
    [InlineData(Variant.Float16WeightsBehindCasts, SelectionCriterion.Gem)]
    [InlineData(Variant.BFloat16WeightsBehindCasts, SelectionCriterion.Refit)]
    public void Calibrated_pruning_fits_layers_keeps_the_stored_types_and_improves_agreement(Variant variant, SelectionCriterion criterion)
    {
        using var model = Net(variant);
        var calibration = Calibration(model, Samples, seed: 1);
        var log = new List<string>();
        using var result = Pruner.Prune(model, Options(calibration, criterion) with { Log = log.Add });
        var summary = result.Summary;
        // Some pass over the pruned model started from cached activations: values fed back in, cast to their own type.
        Assert.Contains(log, l => CachedPattern().Match(l) is { Success: true } m && int.Parse(m.Groups[1].Value) > 0);
        output.WriteLine($"{summary.Recovery}; cosine {summary.AgreementBeforeRecovery?.Cosine:0.0000} → {summary.Agreement?.Cosine:0.0000}, " +
            $"top-1 {summary.AgreementBeforeRecovery?.Top1Agreement:0.000} → {summary.Agreement?.Top1Agreement:0.000}, MACs {summary.After.Macs}/{summary.Before.Macs}");

        Assert.True(summary.After.Params < summary.Before.Params, $"{summary.After.Params} ≥ {summary.Before.Params}");
        Assert.True(summary.After.Macs < summary.Before.Macs * 0.7, $"MACs {summary.After.Macs} of {summary.Before.Macs}");
        Assert.Equal(Samples - HeldOut, int.Parse(FittedPattern().Match(summary.Recovery!).Groups[2].Value));
        Assert.True(FittedLayers(summary) >= 3, summary.Recovery);
        Assert.DoesNotContain(summary.Notes, n => n.StartsWith("not re-fitted", StringComparison.Ordinal));

        // Every floating initializer keeps its stored type: nothing was widened to float32 on the way.
        int stored = variant == Variant.BFloat16WeightsBehindCasts ? DataType.BFloat16 : DataType.Float16;
        Assert.All(result.Model.Graph.Initializers.Values.Where(t => t.IsFloating), t => Assert.Equal(stored, t.DataType));
        Assert.All(result.Model.Graph.Initializers.Values.Where(t => t.IsFloating), t => Assert.All(t.ToFloats(), v => Assert.True(float.IsFinite(v))));

        // Agreement on the held-out samples: reconstruction makes the pruned model answer more like the original.
        var before = summary.AgreementBeforeRecovery!;
        var after = summary.Agreement!;
        Assert.True(after.Cosine is double a && double.IsFinite(a) && before.Cosine is double b && double.IsFinite(b));
        Assert.True(after.Cosine > before.Cosine + 0.03, $"cosine {before.Cosine:0.0000} → {after.Cosine:0.0000}");
        Assert.True(after.Cosine > 0.98, $"cosine after reconstruction {after.Cosine:0.0000}");

        // The written model runs on ONNX Runtime with the original's interface types, on samples it has not seen.
        using var runner = new ModelRunner(result.Model.ToBytes());
        var fresh = Calibration(model, 8, seed: 99);
        var slim = Assert.Single(runner.Run([fresh]));
        Assert.Equal(variant == Variant.Float16 ? typeof(Half[]) : typeof(float[]), slim.Data.GetType());
        Assert.Equal([8L, 10], slim.Shape);
        using var original = new ModelRunner(model.ToBytes());
        var reference = Assert.Single(original.Run([fresh]));
        var agreement = OutputComparison.Compare([reference], [slim]);
        output.WriteLine($"fresh samples: cosine {agreement.Cosine:0.0000}");
        Assert.True(agreement.Cosine > 0.98, $"cosine on fresh samples {agreement.Cosine:0.0000}");
    }

    [Fact]
    public void Float32_samples_feed_a_float16_input_and_give_the_same_model_as_float16_samples()
    {
        // A float32 array for a float16 input is converted (rounded to nearest) on loading, as a float16 file's values are.
        using var model = Net(Variant.Float16);
        using var probe = new ModelRunner(model.ToBytes());
        var inputs = probe.Inputs;
        string dir = Fixtures.TempDir();
        string f32 = Path.Combine(dir, "calib32.npy");
        NpyFile.WriteFloats(f32, [64, 3, 12, 12], Images(64, seed: 4));
        using var file = CalibrationInputs.Load(inputs, f32, 1000);
        Assert.True(file.Inputs[0].IsFileBacked);
        var loaded = Assert.Single(file.ToTensors());
        Assert.Equal(TensorElementType.Float16, loaded.ElementType);
        Assert.IsType<Half[]>(loaded.Data);

        var direct = Calibration(model, 64, seed: 4);
        Assert.Equal((Half[])direct.Data, (Half[])loaded.Data);
        // The file-backed set itself, read a batch at a time, gives the same model as the array in memory.
        using var a = Pruner.Prune(model, Options(direct, SelectionCriterion.Refit) with { Calibration = file, HeldOutSamples = 8, Validate = false });
        using var b = Pruner.Prune(model, Options(direct, SelectionCriterion.Refit) with { HeldOutSamples = 8, Validate = false });
        Assert.Equal(a.Model.ToBytes(), b.Model.ToBytes());
    }

    [Theory]
    [InlineData(SelectionCriterion.Refit, 0, "the original model computes +inf in '")]
    // With held-out samples the refusal comes from the reference outputs or from the first calibration pass, whichever
    // meets the overflow first: ONNX Runtime may run the float16 convs of a session without outputs in between in float32.
    [InlineData(SelectionCriterion.Gem, 8, "the original model ")]
    public void A_float16_model_that_overflows_on_its_samples_is_refused_with_one_line(SelectionCriterion criterion, int heldOut, string expected)
    {
        // Samples of ±30000 through a stem with large weights: past float16's ±65504 in the pooled features.
        var b = new GraphBuilder(seed: 11, elementType: DataType.Float16);
        string x = b.Input("x", -1, 3, 12, 12);
        string h = b.Relu(b.Conv(x, 3, 16, weight: b.Init("wbig", [16, 3, 3, 3], b.Normal(432, 3.0))));
        h = b.Relu(b.Conv(h, 16, 16));
        h = b.Relu(b.Conv(h, 16, 32));
        h = b.Node("Flatten", [b.Node("GlobalAveragePool", [h])]);
        b.Output(b.Node("Gemm", [h, b.Init("fc", [10, 32]), b.Init("fcb", [10])], ("transB", 1L)), -1, 10);
        using var model = b.Model();
        var random = new Random(1);
        var values = Enumerable.Range(0, 64 * 3 * 144).Select(_ => (float)((random.NextDouble() * 2 - 1) * 30000)).ToArray();
        var calibration = new NamedTensor("x", TensorElementType.Float16, [64, 3, 12, 12], NamedTensor.FromFloats(values, TensorElementType.Float16));

        var e = Assert.Throws<ArgumentException>(() => Pruner.Prune(model, Options(calibration, criterion) with { HeldOutSamples = heldOut }));
        Assert.StartsWith(expected, e.Message);
        Assert.Contains("float16 overflows past ±65504", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
