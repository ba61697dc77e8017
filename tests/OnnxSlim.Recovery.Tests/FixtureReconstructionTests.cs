using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Runtime.Recovery;
using Xunit.Abstractions;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.Recovery.Tests;

/// <summary>
/// The trained Fashion-MNIST ResNet with half of every residual block's inner channels removed (smallest
/// L2 filter norms, sliced by hand): reconstruction on the 256 calibration images must bring the pruned
/// model's predictions on held-out test images much closer to the original's.
/// </summary>
public sealed class FixtureReconstructionTests(ITestOutputHelper output)
{
    private const int TestImages = 2000;

    [Fact]
    public void Reconstruction_restores_agreement_of_a_half_pruned_resnet()
    {
        var original = OnnxModel.Load(Fixtures.FusedResnet);
        var pruned = original.Clone();
        var kept = PruneInnerChannels(pruned, 0.5);
        Assert.Equal(9, kept.Count);

        var calib = NpyFile.Read(Fixtures.CalibX);
        var calibration = new NamedTensor("input", TensorElementType.Float, calib.Shape, calib.Floats!);
        var test = TestSet(TestImages);
        var reference = Logits(original, test);
        var before = Compare(reference, Logits(pruned, test));

        var report = Reconstruction.Run(original, pruned, kept, [calibration]);
        var after = Compare(reference, Logits(pruned, test));

        foreach (var l in report.Layers) output.WriteLine($"{l.Name}: {l.ErrorBefore:0.000} → {l.ErrorAfter:0.000} ({l.Rows}×{l.Features}, {l.Seconds:0.00} s) {l.Skipped}");
        output.WriteLine($"top-1 agreement {before.Top1:0.000} → {after.Top1:0.000}, cosine {before.Cosine:0.000} → {after.Cosine:0.000}; {report.Seconds:0.0} s, {report.RuntimeRuns} runs, {report.Levels} levels");
        Assert.Equal(9, report.FittedCount);
        Assert.All(report.Layers, l => Assert.True(l.ErrorAfter < l.ErrorBefore));
        Assert.True(after.Top1 > before.Top1 + 0.05, $"top-1 agreement {before.Top1:0.000} → {after.Top1:0.000}");
        Assert.True(after.Top1 > 0.9, $"top-1 agreement after reconstruction {after.Top1:0.000}");
        Assert.True(after.Cosine > before.Cosine);
    }

    /// <summary>
    /// Keeps the largest-norm <paramref name="fraction"/> of each block's conv1 filters and slices conv2's
    /// inputs to match; these channels are coupled to nothing else, so no rewriter is needed.
    /// </summary>
    internal static Dictionary<string, int[]> PruneInnerChannels(OnnxModel model, double fraction)
    {
        var kept = new Dictionary<string, int[]>();
        var graph = model.Graph;
        foreach (var conv1 in graph.Nodes.Where(n => n.OpType == "Conv" && n.Name.EndsWith("/conv1/Conv") && n.Name.Contains("layer")).ToList())
        {
            var conv2 = graph.Nodes.Single(n => n.Name == conv1.Name.Replace("conv1", "conv2"));
            var w = graph.Initializer(conv1.Inputs[1])!;
            int channels = (int)w.Dims[0], width = (int)(w.ElementCount / channels);
            float[] values = w.ToFloats();
            var norms = Enumerable.Range(0, channels).Select(c => values.AsSpan(c * width, width).ToArray().Sum(v => (double)v * v)).ToArray();
            int[] keep = [.. Enumerable.Range(0, channels).OrderByDescending(c => norms[c]).Take((int)Math.Round(channels * fraction)).Order()];
            TinyModel.SliceAxis(model, conv1.Inputs[1], 0, keep);
            TinyModel.SliceAxis(model, conv1.Inputs[2], 0, keep);
            TinyModel.SliceAxis(model, conv2.Inputs[1], 1, keep);
            kept[conv1.Id] = keep;
        }
        graph.Reindex();
        return kept;
    }

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

    internal static (double Top1, double Cosine) Compare(NamedTensor reference, NamedTensor candidate)
    {
        var c = OutputComparison.Compare([reference], [candidate]);
        return (c.Top1Agreement!.Value, c.Cosine);
    }
}
