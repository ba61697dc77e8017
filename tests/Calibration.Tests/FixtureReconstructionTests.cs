using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Calibration;
using OnnxSlim.TestSupport;
using Xunit.Abstractions;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.Calibration.Tests;

/// <summary>
/// The trained Fashion-MNIST ResNet with half of every residual block's inner channels removed (smallest
/// L2 filter norms of the fused model, sliced by hand; these channels are coupled to nothing else):
/// reconstruction on the 256 calibration images must bring the pruned model's predictions on held-out
/// test images far closer to the original's, and the BatchNorm and fused variants must end up alike.
/// </summary>
public sealed class FixtureReconstructionTests(ITestOutputHelper output)
{
    private const int TestImages = 500;

    [Fact]
    public void Reconstruction_restores_agreement_of_a_half_pruned_resnet_with_and_without_batchnorm()
    {
        var calib = NpyFile.Read(Fixtures.CalibX);
        var calibration = new NamedTensor("input", TensorElementType.Float, calib.Shape, calib.Floats!);
        var test = TestSet(TestImages);
        var fusedOriginal = OnnxModel.Load(Fixtures.FusedResnet);
        var keep = InnerChannelsToKeep(fusedOriginal, 0.5);
        Assert.Equal(9, keep.Count);

        var fused = Check("fused", fusedOriginal, keep, calibration, test);
        var bn = Check("batchnorm", OnnxModel.Load(Fixtures.BnResnet), keep, calibration, test);

        // Folding BatchNorm changes only how each output column is scaled, which least squares follows exactly.
        var between = OutputComparison.Compare([fused], [bn]);
        output.WriteLine($"fused vs batchnorm after reconstruction: top-1 agreement {between.Top1Agreement:0.0000}, cosine {between.Cosine:0.00000}");
        Assert.True(between.Top1Agreement > 0.995, $"fused and BatchNorm variants agree on {between.Top1Agreement:0.000} of predictions");
    }

    private NamedTensor Check(string label, OnnxModel original, Dictionary<string, int[]> keep, NamedTensor calibration, NamedTensor test)
    {
        var pruned = original.Clone();
        PruneInnerChannels(pruned, keep);
        var reference = Logits(original, test);
        var before = OutputComparison.Compare([reference], [Logits(pruned, test)]);

        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, keep), [calibration]);
        var result = Logits(pruned, test);
        var after = OutputComparison.Compare([reference], [result]);

        foreach (var l in report.Layers) output.WriteLine($"{label} {l.Name}: {l.ErrorBefore:0.000} → {l.ErrorAfter:0.000} ({l.Rows}×{l.Features}, {l.Seconds:0.00} s) {l.Skipped}");
        output.WriteLine($"{label}: top-1 agreement {before.Top1Agreement:0.000} → {after.Top1Agreement:0.000}, cosine {before.Cosine:0.000} → {after.Cosine:0.000}; " +
            $"{report.Seconds:0.0} s ({report.RuntimeSeconds:0.0} s in ONNX Runtime), {report.RuntimeRuns} runs, {report.Levels} levels");
        Assert.Equal(9, report.FittedCount);
        Assert.All(report.Layers, l => Assert.True(l.ErrorAfter < l.ErrorBefore, l.ToString()));
        Assert.True(before.Top1Agreement < 0.5, $"{label}: pruning alone should hurt (agreement {before.Top1Agreement:0.000})");
        Assert.True(after.Top1Agreement > 0.93, $"{label}: top-1 agreement after reconstruction {after.Top1Agreement:0.000}");
        Assert.True(after.Cosine > 0.97, $"{label}: cosine after reconstruction {after.Cosine:0.000}");
        return result;
    }

    /// <summary>The largest-norm <paramref name="fraction"/> of each block's conv1 filters, by conv1 node name.</summary>
    internal static Dictionary<string, int[]> InnerChannelsToKeep(OnnxModel fused, double fraction)
    {
        var keep = new Dictionary<string, int[]>();
        foreach (var conv1 in InnerConvs(fused))
        {
            var w = fused.Graph.Initializer(conv1.Inputs[1])!;
            int channels = (int)w.Dims[0], width = (int)(w.ElementCount / channels);
            float[] values = w.ToFloats();
            var norms = Enumerable.Range(0, channels).Select(c => values.AsSpan(c * width, width).ToArray().Sum(v => (double)v * v)).ToArray();
            keep[conv1.Id] = [.. Enumerable.Range(0, channels).OrderByDescending(c => norms[c]).Take((int)Math.Round(channels * fraction)).Order()];
        }
        return keep;
    }

    /// <summary>Slices conv1's filters (and bias, or its BatchNorm's parameters) and conv2's inputs.</summary>
    internal static void PruneInnerChannels(OnnxModel model, Dictionary<string, int[]> keep)
    {
        var graph = model.Graph;
        foreach (var conv1 in InnerConvs(model))
        {
            int[] k = keep[conv1.Id];
            ModelOps.SliceAxis(model, conv1.Inputs[1], 0, k);
            if (conv1.Input(2).Length > 0) ModelOps.SliceAxis(model, conv1.Inputs[2], 0, k);
            if (graph.Consumers(conv1.Outputs[0]).SingleOrDefault(n => n.OpType == "BatchNormalization") is { } bn)
                foreach (var p in bn.Inputs.Skip(1)) ModelOps.SliceAxis(model, p, 0, k);
            var conv2 = graph.Nodes.Single(n => n.Name == conv1.Name.Replace("conv1", "conv2"));
            ModelOps.SliceAxis(model, conv2.Inputs[1], 1, k);
        }
        graph.Reindex();
    }

    private static List<Node> InnerConvs(OnnxModel model) =>
        [.. model.Graph.Nodes.Where(n => n.OpType == "Conv" && n.Name.EndsWith("/conv1/Conv") && n.Name.Contains("layer"))];

    internal static NamedTensor TestSet(int images)
    {
        var x = NpyFile.Read(Fixtures.TestX);
        long per = x.Floats!.Length / x.Shape[0];
        return new NamedTensor("input", TensorElementType.Float, [images, .. x.Shape[1..]], x.Floats.AsSpan(0, (int)(per * images)).ToArray());
    }

    internal static NamedTensor Logits(OnnxModel model, NamedTensor input)
    {
        using var runner = new ModelRunner(model.ToBytes());
        return runner.Run([input])[0];
    }
}
