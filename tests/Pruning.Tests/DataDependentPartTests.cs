using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Pruning.Tests;

/// <summary>Models whose outputs have data-dependent sizes (a detector after NMS): validation compares the values before that part.</summary>
public sealed class DataDependentPartTests
{
    /// <summary>
    /// A detector in small: a backbone, a 4-channel "head" conv whose positive positions are found (as NMS keeps boxes),
    /// and a MatMul run once per found position. <paramref name="head"/> is the head conv's output, <paramref name="found"/>
    /// the data-dependent output; the head's sigmoid is an output too, and a Reshape reads the backbone's shape only.
    /// </summary>
    private static OnnxModel Detector(out string head, out string score, out string found, long batch = 1)
    {
        var b = new GraphBuilder(seed: 3);
        string x = b.Input("x", batch, 3, 16, 16);
        string backbone = b.Relu(b.Conv(b.Relu(b.Conv(x, 3, 32)), 32, 32));
        head = b.Conv(backbone, 32, 4);
        score = b.Node("Sigmoid", [head]);
        b.Output(score, batch, 4, 16, 16);
        string positions = b.Node("Transpose", [b.Node("NonZero", [b.Node("Greater", [head, b.Init("zero", [1], [0f])])])]);
        // The per-position head reads the backbone's shape (as anchors do), not its values.
        string size = b.Node("Cast", [b.Node("ReduceSum", [b.Node("Shape", [backbone])], ("keepdims", 1L))], ("to", 1L));
        string perPosition = b.Node("Mul", [b.Node("Cast", [positions], ("to", 1L)), size]);
        found = b.Node("MatMul", [perPosition, b.Init("per_position", [4, 64])]);
        b.Output(found, -1, 64);
        return b.Model();
    }

    [Fact]
    public void The_layer_outputs_just_before_the_part_are_compared_and_shape_reads_are_not_followed()
    {
        using var model = Detector(out string head, out string score, out string found);
        var part = DataDependentPart.Find(model.Graph)!;
        Assert.Equal([head, score], part.Compared);
        Assert.Equal([found], part.Outputs);
        Assert.Equal(["NonZero"], part.SourceOps);
        Assert.Contains(found, part.Values);
        Assert.DoesNotContain(head, part.Values);
    }

    [Fact]
    public void A_model_without_data_dependent_outputs_has_no_such_part()
    {
        var b = new GraphBuilder(seed: 3);
        string h = b.Conv(b.Input("x", 1, 3, 8, 8), 3, 8);
        // A NonZero whose result no output depends on does not make the outputs data-dependent.
        b.Node("NonZero", [h]);
        b.Output(b.Relu(h), 1, 8, 8, 8);
        using var model = b.Model();
        Assert.Null(DataDependentPart.Find(model.Graph));
    }

    [Fact]
    public void A_detector_like_model_is_validated_on_the_values_before_its_data_dependent_part()
    {
        using var model = Detector(out string head, out string score, out string found);
        using var result = Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false });
        var agreement = result.Summary.Agreement!;
        Assert.True(agreement.Measured);
        Assert.Equal(2, agreement.OutputsCompared);
        Assert.Equal([head, score], agreement.ValuesCompared);
        Assert.Equal([found], agreement.DataDependentOutputs);
        Assert.Null(agreement.Top1Agreement);
        Assert.InRange(agreement.Cosine!.Value, 0.05, 0.99999);
        string text = agreement.Describe();
        Assert.StartsWith("cosine ", text);
        Assert.Contains($"over the 2 layer outputs before the part after NonZero (e.g. '{head}'), not over the outputs ('{found}')", text);
        Assert.Contains(result.Summary.Notes, n => n.Contains("part after NonZero") && n.Contains("was not run"));

        // The cost is what the whole pruned model's shapes gave, its data-dependent sizes at the original's.
        var original = ModelAnalysis.ProbeShapes(model, []);
        var pruned = ModelAnalysis.ProbeShapes(result.Model, []);
        long expected = ModelCost.Compute(result.Model.Graph, DataDependentSizes.AtOriginal(pruned, original, out _)).Macs;
        Assert.Equal(expected, result.Summary.After.Macs);
        using var unvalidated = Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false, Validate = false });
        Assert.Equal(expected, unvalidated.Summary.After.Macs);
        Assert.Equal(unvalidated.Model.ToBytes(), result.Model.ToBytes());

        Assert.Throws<ValidationFailedException>(() => Pruner.Prune(model, new PruneOptions { Ratio = 0.5, Time = false, MinAgreement = 0.99999 }));
    }

    [Fact]
    public void Held_out_samples_are_compared_on_the_values_before_the_part()
    {
        using var model = Detector(out string head, out string score, out _, batch: -1);
        var samples = new Runtime.NamedTensor("x", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [12, 3, 16, 16],
            new GraphBuilder(seed: 9).Normal(12 * 3 * 16 * 16));
        using var result = Pruner.Prune(model, new PruneOptions
        {
            Ratio = 0.5, Time = false, Calibration = Calibration.CalibrationData.FromTensors([samples]), HeldOutSamples = 4,
        });
        var agreement = result.Summary.Agreement!;
        Assert.StartsWith("4 held-out calibration samples", result.Summary.AgreementInputs);
        Assert.Equal([head, score], agreement.ValuesCompared);
        Assert.Equal(2, agreement.OutputsCompared);
        Assert.InRange(agreement.Cosine!.Value, 0.05, 1);
        Assert.Equal([head, score], result.Summary.AgreementBeforeRecovery!.ValuesCompared);
    }

    [Fact]
    public void Values_of_another_shape_are_listed_and_leave_the_agreement_not_measured()
    {
        using var model = Detector(out string head, out string score, out string found);
        var part = DataDependentPart.Find(model.Graph)!;
        var comparison = new Runtime.OutputComparison(1, 0, 0, null, true, 0, [$"'{head}' ([1x4x16x16] vs [1x2x16x16])", $"'{score}' ([1x4x16x16] vs [1x2x16x16])"]);
        var agreement = AgreementFigures.From(comparison, part);
        Assert.False(agreement.Measured);
        Assert.Null(agreement.Cosine);
        Assert.Equal($"not measured: none of the 2 layer outputs before the part after NonZero (e.g. '{head}') has the same shape in both models, " +
            $"and the outputs ('{found}') have sizes that depend on the data (not compared (original vs pruned shape): '{head}' ([1x4x16x16] vs [1x2x16x16]), " +
            $"'{score}' ([1x4x16x16] vs [1x2x16x16]))", agreement.Describe());
    }

    [Fact]
    public void Kept_channel_shapes_match_the_pruned_models_own()
    {
        // A flatten of C×H×W into a Gemm, and a Concat of two groups: layouts with inner sizes and several segments.
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", 2, 3, 8, 8);
        string left = b.Relu(b.Conv(x, 3, 16)), right = b.Relu(b.Conv(x, 3, 8));
        string joined = b.Relu(b.Conv(b.Node("Concat", [left, right], ("axis", 1L)), 24, 8));
        string y = b.Node("Gemm", [b.Node("Flatten", [joined]), b.Init("fc", [10, 8 * 64]), b.Init("fcb", [10])], ("transB", 1L));
        b.Output(y, 2, 10);
        using var model = b.Model();
        foreach (var source in new[] { model, OnnxModel.Load(Fixtures.FusedResnet) })
        {
            using var work = source.Clone();
            var analysis = ModelAnalysis.Run(work, []);
            var keep = analysis.Groups.Prunable.ToDictionary(g => g.Id, g => Enumerable.Range(0, g.Width).Where(i => i % 3 != 1 || i % (g.Width / g.Blocks) == 0).ToArray());
            keep = keep.Where(kv => analysis.Groups[kv.Key].KeepsEqualBlocks(kv.Value)).ToDictionary();
            Assert.NotEmpty(keep);
            ChannelPruner.Apply(work, analysis.Groups, keep);
            var derived = PrunedShapes.Derive(analysis.Shapes, analysis.Groups, keep)!;
            var probed = ModelAnalysis.ProbeShapes(work, []);
            foreach (var value in ModelAnalysis.CostValues(work.Graph))
                Assert.Equal(probed[value], derived[value]);
            if (!ReferenceEquals(source, model)) source.Dispose();
        }
    }
}
