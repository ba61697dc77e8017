using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>
/// A ConvTranspose whose kernel equals its stride (DB heads' up-sampling) reads pruned channels like a 1×1 conv writing
/// k² outputs per channel: when the removed channels are linear combinations of the kept ones, its re-fit must
/// reproduce the original output exactly, which any error in the space-to-depth indexing, the (channel, tap) weight
/// order or the shared bias breaks. Overlapping ConvTransposes are left as pruned, with a reason.
/// </summary>
public sealed class ConvTransposeRefitTests
{
    private static readonly ReconstructionOptions Tight = new() { Ridge = 1e-9 };

    private static NamedTensor Images(int n, int seed)
    {
        var m = new GraphBuilder(seed: seed);
        return ModelOps.Floats("x", [n, 3, 6, 5], m.Normal(n * 3 * 6 * 5));
    }

    /// <summary>x → Conv A (6 channels; 4 = 0.5·0 − 1.2·2 and 5 = 1 + 0.3·3 with their biases) → ConvTranspose T (5 outputs, kernel <paramref name="kernel"/>, stride 2) → Relu → Conv C.</summary>
    private static OnnxModel Model(int seed, long kernel)
    {
        var m = new GraphBuilder(seed: seed);
        var wa = m.Normal(6 * 27, 0.5);
        var ba = m.Normal(6, 0.2);
        foreach (var (j, terms) in new[] { (4, new[] { (0, 0.5f), (2, -1.2f) }), (5, new[] { (1, 1f), (3, 0.3f) }) })
        {
            Array.Clear(wa, j * 27, 27);
            ba[j] = 0;
            foreach (var (i, c) in terms)
            {
                for (int k = 0; k < 27; k++) wa[j * 27 + k] += c * wa[i * 27 + k];
                ba[j] += c * ba[i];
            }
        }
        return m.WithInput("x", -1, 3, 6, 5)
            .WithInitializer("A.w", [6, 3, 3, 3], wa).WithInitializer("A.b", [6], ba)
            .WithInitializer("T.w", [6, 5, kernel, kernel], m.Normal(6 * 5 * (int)(kernel * kernel), 0.3)).WithInitializer("T.b", [5], m.Normal(5, 0.3))
            .WithInitializer("C.w", [2, 5, 1, 1], m.Normal(10, 0.3))
            .WithNode("Conv", "A", ["x", "A.w", "A.b"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("ConvTranspose", "T", ["a", "T.w", "T.b"], ["t"], ("kernel_shape", new long[] { kernel, kernel }), ("strides", new long[] { 2, 2 }))
            .WithNode("Relu", "relu", ["t"], ["r"])
            .WithNode("Conv", "C", ["r", "C.w"], ["y"])
            .WithOutput("y")
            .Model();
    }

    [Fact]
    public void ConvTranspose_after_linearly_dependent_channels_is_recovered_exactly()
    {
        var original = Model(seed: 31, kernel: 2);
        int[] keep = [0, 1, 2, 3];
        var pruned = original.Clone();
        foreach (var t in new[] { "A.w", "A.b", "T.w" }) ModelOps.SliceAxis(pruned, t, 0, keep); // ConvTranspose: inputs on axis 0
        pruned.Graph.Reindex();

        var test = Images(3, seed: 8);
        double before = ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test));
        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]>()), [Images(12, seed: 9)], Tight);
        double after = ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test));

        var layer = Assert.Single(report.Layers);
        Assert.Equal("T", layer.Name);
        Assert.True(layer.Fitted, layer.Skipped);
        Assert.Equal(5 * 4, layer.Outputs); // (channel, tap) pairs
        Assert.Equal(12 * 30, layer.Rows);  // one row per input pixel
        Assert.True(before > 0.05, $"pruning should visibly change the output (error {before})");
        Assert.True(after < 1e-4, $"reconstruction should be exact, error {after}");
        Assert.Equal([5L], pruned.Graph.ResolveWeight("T.b")!.Tensor.Dims);
    }

    [Fact]
    public void ConvTranspose_with_pruned_outputs_reproduces_its_kept_outputs()
    {
        var original = Model(seed: 37, kernel: 2);
        int[] keepA = [0, 1, 2, 3], keepT = [1, 3, 4];
        var pruned = original.Clone();
        foreach (var name in new[] { "A.w", "A.b", "T.w" }) ModelOps.SliceAxis(pruned, name, 0, keepA);
        ModelOps.SliceAxis(pruned, "T.w", 1, keepT);
        ModelOps.SliceAxis(pruned, "T.b", 0, keepT);
        ModelOps.SliceAxis(pruned, "C.w", 1, keepT);
        pruned.Graph.Reindex();

        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["T"] = keepT }), [Images(12, seed: 10)], Tight);

        var t = report.Layers.Single(l => l.Name == "T");
        Assert.True(t.Fitted, t.Skipped);
        Assert.Equal(3 * 4, t.Outputs);
        Assert.True(t.ErrorBefore > 0.05 && t.ErrorAfter < 1e-4, $"T's kept outputs should be exact: {t.ErrorBefore} → {t.ErrorAfter}");
        var c = report.Layers.Single(l => l.Name == "C");
        Assert.True(c.Fitted && c.ErrorAfter < c.ErrorBefore, $"{c.ErrorBefore} → {c.ErrorAfter}");
    }

    [Fact]
    public void Overlapping_ConvTranspose_is_left_as_pruned_with_a_reason()
    {
        var original = Model(seed: 41, kernel: 3); // kernel 3, stride 2: neighbouring pixels' blocks overlap
        int[] keep = [0, 1, 2, 3];
        var pruned = original.Clone();
        foreach (var t in new[] { "A.w", "A.b", "T.w" }) ModelOps.SliceAxis(pruned, t, 0, keep);
        pruned.Graph.Reindex();
        float[] weights = pruned.Graph.ResolveWeight("T.w")!.Tensor.ToFloats();

        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]>()), [Images(8, seed: 11)], Tight);

        var layer = Assert.Single(report.Layers);
        Assert.False(layer.Fitted);
        Assert.Contains("stride = kernel", layer.Skipped);
        Assert.Equal(weights, pruned.Graph.ResolveWeight("T.w")!.Tensor.ToFloats());
    }

    [Fact]
    public void ConvTranspose_outputs_share_their_channels_chain()
    {
        // T → BatchNormalization → Relu: each (channel, tap) output gets its channel's scale and offset, and the Relu.
        var m = new GraphBuilder(seed: 43);
        float[] gamma = [1.5f, -0.5f, 2f, 0.25f, 3f];
        var original = m.WithInput("x", -1, 6, 4, 4)
            .WithInitializer("T.w", [6, 5, 2, 2], m.Normal(6 * 5 * 4, 0.3)).WithInitializer("T.b", [5], m.Normal(5, 0.3))
            .WithInitializer("g", [5], gamma).WithInitializer("beta", [5], [0.1f, 0.2f, 0.3f, 0.4f, 0.5f])
            .WithInitializer("mu", [5], [0f, 0f, 0f, 0f, 0f]).WithInitializer("var", [5], [1f, 1f, 1f, 1f, 1f])
            .WithNode("ConvTranspose", "T", ["x", "T.w", "T.b"], ["t"], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }))
            .WithNode("BatchNormalization", "bn", ["t", "g", "beta", "mu", "var"], ["n"], ("epsilon", 0f))
            .WithNode("Relu", "relu", ["n"], ["y"])
            .WithOutput("y")
            .Model();
        int[] keep = [1, 3, 4];
        var pruned = original.Clone();
        ModelOps.SliceAxis(pruned, "T.w", 0, [0, 1, 2, 3]);
        ModelOps.SliceAxis(pruned, "T.w", 1, keep);
        foreach (var name in new[] { "T.b", "g", "beta", "mu", "var" }) ModelOps.SliceAxis(pruned, name, 0, keep);
        pruned.Graph.Reindex();

        var (units, skipped) = ConsumerDiscovery.Find(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["T"] = keep }));
        Assert.Empty(skipped);
        var unit = Assert.Single(units);
        Assert.Equal(4, unit.Block);
        Assert.Equal([4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18, 19], unit.KeptOutputs);
        var chain = OutputChain.Find(unit, original.Graph, pruned.Graph, 5);
        Assert.NotNull(chain);
        Assert.True(chain.ReluFollows);
        Assert.Equal(12, chain.Scale.Length);
        for (int i = 0; i < 12; i++)
        {
            Assert.Equal(gamma[keep[i / 4]], chain.Scale[i], 6);
            Assert.Equal(0.1 * (keep[i / 4] + 1), chain.Offset[i], 6);
        }
    }

    /// <summary>
    /// The ranking's pass records a block ConvTranspose's targets as the reconstruction reads them (rows over the input
    /// grid, k² channels per output channel): the reconstruction then never runs the original model (on PP-OCRv4 det it
    /// ran all of it again for the head's two ConvTransposes alone), and fits the same weights.
    /// </summary>
    [Fact]
    public void The_ranking_pass_records_the_targets_of_block_ConvTransposes()
    {
        var calibration = Images(12, seed: 9);
        (OnnxModel Original, OnnxModel Pruned, List<RefitLayer> Layers) Pruned()
        {
            var original = Model(seed: 31, kernel: 2);
            var pruned = original.Clone();
            var groups = Harness.Analyze(pruned);
            var keep = groups.Prunable.Where(g => g.Width == 6).ToDictionary(g => g.Id, g => new[] { 0, 1, 2, 3 });
            var originalOf = pruned.Graph.Nodes.Zip(original.Graph.Nodes).ToDictionary(p => p.First, p => p.Second);
            ChannelPruner.Apply(pruned, groups, keep, RewriteOptions.Plain);
            return (original, pruned, RefitLayer.FromGroups(groups, keep, pruned.Graph, n => originalOf.GetValueOrDefault(n)));
        }
        var (original, separate, layers) = Pruned();
        var (_, recorded, recordedLayers) = Pruned();
        var ranked = Model(seed: 31, kernel: 2);
        var groups = Harness.Analyze(ranked);
        using var recording = new TargetRecording(12, Tight);
        CalibratedRanking.Measure(ranked, groups, groups.Prunable, CalibrationData.FromTensors([calibration]), seed: 0, recording: recording);

        var passes = new List<string>();
        var plain = Reconstruction.Run(original, separate, layers, [calibration], Tight);
        var report = Reconstruction.Run(original, recorded, recordedLayers, [calibration], Tight with { PassLog = passes.Add }, recording);
        Assert.True(plain.Layers.Single(l => l.Name == "T").Fitted);
        Assert.True(report.Layers.Single(l => l.Name == "T").Fitted);
        Assert.Contains(passes, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^targets of (\d+) of \1 layers from the ranking's pass"));
        Assert.DoesNotContain(passes, l => l.StartsWith("pass over the original model"));
        var test = Images(3, seed: 8);
        Assert.True(ModelOps.RelativeMaxError(ModelOps.Run(separate, test), ModelOps.Run(recorded, test)) < 1e-5);
    }
}
