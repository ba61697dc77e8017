using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Calibration;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>
/// When the removed channels are exact linear combinations of the kept ones, the next layer can absorb
/// them exactly, so reconstruction must reproduce the original output to float precision. Any error in
/// im2col (strides, pads, dilations, groups), the solver or the weight layout breaks that.
/// </summary>
public sealed class ExactRecoveryTests
{
    private static readonly ReconstructionOptions Tight = new() { Ridge = 1e-9 };

    /// <summary>Filters (rows of length <paramref name="width"/>) and biases where row j of <paramref name="combos"/> is Σ c·row i.</summary>
    private static (float[] W, float[] B) CombinedFilters(GraphBuilder m, int rows, int width, Dictionary<int, (int Row, float Coef)[]> combos)
    {
        var w = m.Normal(rows * width, 0.5);
        var b = m.Normal(rows, 0.2);
        foreach (var (j, terms) in combos)
        {
            Array.Clear(w, j * width, width);
            b[j] = 0;
            foreach (var (i, c) in terms)
            {
                for (int k = 0; k < width; k++) w[j * width + k] += c * w[i * width + k];
                b[j] += c * b[i];
            }
        }
        return (w, b);
    }

    private static readonly Dictionary<int, (int, float)[]> LinearCombos = new()
    {
        [4] = [(0, 0.5f), (2, -1.2f)],
        [5] = [(1, 1f), (3, 0.3f)],
    };

    private static NamedTensor Images(int n, int c, int h, int w, int seed)
    {
        var m = new GraphBuilder(seed: seed);
        return ModelOps.Floats("x", [n, c, h, w], m.Normal(n * c * h * w));
    }

    public static TheoryData<long[], long[], long[], string> Geometries => new()
    {
        { [1, 1], [1, 1, 1, 1], [1, 1], "NOTSET" },
        { [2, 2], [1, 1, 1, 1], [1, 1], "NOTSET" },
        { [1, 2], [2, 0, 1, 2], [2, 1], "NOTSET" },
        { [2, 1], [0, 0, 0, 0], [1, 1], "SAME_UPPER" },
        { [1, 1], [0, 0, 0, 0], [2, 2], "VALID" },
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Conv_after_linearly_dependent_channels_is_recovered_exactly(long[] strides, long[] pads, long[] dilations, string autoPad)
    {
        var m = new GraphBuilder(seed: 7);
        var (wa, ba) = CombinedFilters(m, 6, 3 * 9, LinearCombos);
        m.WithInput("x", -1, 3, 11, 10)
            .WithInitializer("A.w", [6, 3, 3, 3], wa).WithInitializer("A.b", [6], ba)
            .WithInitializer("B.w", [5, 6, 3, 3], m.Normal(5 * 6 * 9, 0.3)).WithInitializer("B.b", [5], m.Normal(5, 0.1))
            .WithNode("Conv", "A", ["x", "A.w", "A.b"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Conv", "B", ["a", "B.w", "B.b"], ["y"], ConvAttributes(strides, pads, dilations, autoPad))
            .WithOutput("y");
        var original = m.Model();
        var pruned = Prune(original, ("A", [0, 1, 2, 3]), ["A.w", "A.b"], ["B.w"]);

        var test = Images(4, 3, 11, 10, seed: 99);
        double before = ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test));
        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = [0, 1, 2, 3] }), [Images(16, 3, 11, 10, seed: 5)], Tight);
        double after = ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test));

        Assert.True(before > 0.05, $"pruning should visibly change the output (error {before})");
        Assert.True(after < 1e-4, $"reconstruction should be exact, error {after}");
        var layer = Assert.Single(report.Layers);
        Assert.Equal("B", layer.Name);
        Assert.True(layer.Fitted, layer.Skipped);
        // The layer's own figure comes from the sums (θᵀGθ − 2θᵀc + ‖y‖²), whose products are float32 over 256 rows: near an
        // exact fit it cancels down to ~1e-4 of ‖y‖ (1.1e-4 here), while the outputs above agree to 1e-4.
        Assert.True(layer.ErrorAfter < 1e-3 && layer.ErrorBefore > 0.05, $"{layer.ErrorBefore} → {layer.ErrorAfter}");
    }

    private static (string, object)[] ConvAttributes(long[] strides, long[] pads, long[] dilations, string autoPad)
    {
        var list = new List<(string, object)> { ("strides", strides), ("dilations", dilations) };
        if (autoPad == "NOTSET") list.Add(("pads", pads));
        else list.Add(("auto_pad", autoPad));
        return [.. list];
    }

    /// <summary>A clone of <paramref name="original"/> with output channels of producer weights and input channels of consumer weights sliced.</summary>
    private static OnnxModel Prune(OnnxModel original, (string Node, int[] Keep) kept, string[] producerTensors, string[] consumerTensors, int consumerAxis = 1)
    {
        var pruned = original.Clone();
        foreach (var t in producerTensors) ModelOps.SliceAxis(pruned, t, 0, kept.Keep);
        foreach (var t in consumerTensors) ModelOps.SliceAxis(pruned, t, consumerAxis, kept.Keep);
        pruned.Graph.Reindex();
        return pruned;
    }

    [Fact]
    public void Positive_multiples_survive_relu_and_are_recovered_exactly()
    {
        var m = new GraphBuilder(seed: 3);
        var (wa, ba) = CombinedFilters(m, 6, 3 * 9, new() { [4] = [(0, 2f)], [5] = [(3, 0.5f)] });
        m.WithInput("x", -1, 3, 9, 9)
            .WithInitializer("A.w", [6, 3, 3, 3], wa).WithInitializer("A.b", [6], ba)
            .WithInitializer("B.w", [4, 6, 1, 1], m.Normal(4 * 6, 0.3))
            .WithNode("Conv", "A", ["x", "A.w", "A.b"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Relu", "relu", ["a"], ["r"])
            .WithNode("Conv", "B", ["r", "B.w"], ["y"])
            .WithOutput("y");
        var original = m.Model();
        var pruned = Prune(original, ("A", [0, 1, 2, 3]), ["A.w", "A.b"], ["B.w"]);

        Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = [0, 1, 2, 3] }), [Images(8, 3, 9, 9, 1)], Tight);

        var test = Images(3, 3, 9, 9, 2);
        Assert.True(ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test)) < 1e-4);
        // B had no bias: the mean-shift column added one (zero here, but it must exist and load).
        Assert.Equal(3, pruned.Graph.Nodes.Single(n => n.Name == "B").Inputs.Count);
    }

    [Fact]
    public void Grouped_conv_is_fitted_per_group()
    {
        var m = new GraphBuilder(seed: 11);
        // Channel 2 depends on 0,1 (group 0) and channel 5 on 3,4 (group 1): each group keeps 2 of 3.
        var (wa, ba) = CombinedFilters(m, 6, 2 * 9, new() { [2] = [(0, 0.7f), (1, -0.4f)], [5] = [(3, 1.5f), (4, 0.2f)] });
        m.WithInput("x", -1, 2, 8, 8)
            .WithInitializer("A.w", [6, 2, 3, 3], wa).WithInitializer("A.b", [6], ba)
            .WithInitializer("B.w", [4, 3, 3, 3], m.Normal(4 * 3 * 9, 0.3)).WithInitializer("B.b", [4], m.Normal(4, 0.1))
            .WithNode("Conv", "A", ["x", "A.w", "A.b"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Conv", "B", ["a", "B.w", "B.b"], ["y"], ("group", 2L), ("pads", new long[] { 1, 1, 1, 1 }))
            .WithOutput("y");
        var original = m.Model();
        int[] keep = [0, 1, 3, 4];
        var pruned = original.Clone();
        ModelOps.SliceAxis(pruned, "A.w", 0, keep);
        ModelOps.SliceAxis(pruned, "A.b", 0, keep);
        ModelOps.SliceAxis(pruned, "B.w", 1, [0, 1]); // 3 → 2 input channels per group
        pruned.Graph.Reindex();

        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = keep }), [Images(16, 2, 8, 8, 4)], Tight);

        Assert.True(report.Layers.Single().Fitted);
        var test = Images(2, 2, 8, 8, 5);
        Assert.True(ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test)) < 1e-4);
    }

    [Fact]
    public void Conv_with_pruned_outputs_reproduces_its_kept_outputs()
    {
        var m = new GraphBuilder(seed: 13);
        var (wa, ba) = CombinedFilters(m, 6, 3 * 9, LinearCombos);
        m.WithInput("x", -1, 3, 8, 8)
            .WithInitializer("A.w", [6, 3, 3, 3], wa).WithInitializer("A.b", [6], ba)
            .WithInitializer("B.w", [5, 6, 3, 3], m.Normal(5 * 6 * 9, 0.3)).WithInitializer("B.b", [5], m.Normal(5, 0.1))
            .WithInitializer("C.w", [2, 5, 1, 1], m.Normal(10, 0.3))
            .WithNode("Conv", "A", ["x", "A.w", "A.b"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Conv", "B", ["a", "B.w", "B.b"], ["b"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Relu", "relu", ["b"], ["r"])
            .WithNode("Conv", "C", ["r", "C.w"], ["y"])
            .WithOutput("y");
        var original = m.Model();
        int[] keepA = [0, 1, 2, 3], keepB = [1, 3, 4];
        var pruned = original.Clone();
        foreach (var t in new[] { "A.w", "A.b" }) ModelOps.SliceAxis(pruned, t, 0, keepA);
        ModelOps.SliceAxis(pruned, "B.w", 1, keepA);
        foreach (var t in new[] { "B.w", "B.b" }) ModelOps.SliceAxis(pruned, t, 0, keepB);
        ModelOps.SliceAxis(pruned, "C.w", 1, keepB);
        pruned.Graph.Reindex();

        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = keepA, ["B"] = keepB }), [Images(16, 3, 8, 8, 6)], Tight);

        var b = report.Layers.Single(l => l.Name == "B");
        var c = report.Layers.Single(l => l.Name == "C");
        Assert.Equal(3, b.Outputs);
        Assert.True(b.ErrorAfter < 1e-4, $"B's kept outputs should be exact, error {b.ErrorAfter}");
        // C lost two genuinely independent channels: better than before, not exact.
        Assert.True(c.Fitted && c.ErrorAfter < c.ErrorBefore, $"{c.ErrorBefore} → {c.ErrorAfter}");
        Assert.True(report.Levels == 2);
    }

    [Theory]
    [InlineData(true, 1f, 1f)]
    [InlineData(false, 2f, 0.5f)]
    [InlineData(false, 1f, 0f)]
    public void Gemm_after_global_pooling_is_recovered_exactly(bool transB, float alpha, float beta)
    {
        var m = new GraphBuilder(seed: 17);
        var (wa, ba) = CombinedFilters(m, 6, 3 * 9, LinearCombos);
        long[] gemmDims = transB ? [4, 6] : [6, 4];
        m.WithInput("x", -1, 3, 7, 7)
            .WithInitializer("A.w", [6, 3, 3, 3], wa).WithInitializer("A.b", [6], ba)
            .WithInitializer("fc.w", gemmDims, m.Normal(24, 0.5)).WithInitializer("fc.b", [4], m.Normal(4, 0.1))
            .WithNode("Conv", "A", ["x", "A.w", "A.b"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("GlobalAveragePool", "gap", ["a"], ["p"])
            .WithNode("Flatten", "flat", ["p"], ["f"], ("axis", 1L))
            .WithNode("Gemm", "fc", ["f", "fc.w", "fc.b"], ["y"], ("transB", transB ? 1L : 0L), ("alpha", alpha), ("beta", beta))
            .WithOutput("y");
        var original = m.Model();
        var pruned = Prune(original, ("A", [0, 1, 2, 3]), ["A.w", "A.b"], ["fc.w"], consumerAxis: transB ? 1 : 0);

        // 3 images only: per-image rows could not determine 5 parameters per output, per-position rows can.
        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = [0, 1, 2, 3] }), [Images(3, 3, 7, 7, 8)], Tight);

        var layer = Assert.Single(report.Layers);
        Assert.True(layer.Fitted, layer.Skipped);
        Assert.Equal(3 * 49, layer.Rows);
        var test = Images(5, 3, 7, 7, 9);
        Assert.True(ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test)) < 1e-4);
    }

    [Fact]
    public void MatMul_fits_its_bias_into_the_following_add()
    {
        var m = new GraphBuilder(seed: 19);
        var (wa, ba) = CombinedFilters(m, 6, 5, LinearCombos);
        // A "linear layer" as MatMul + Add reading another MatMul's features: [N, 5] → [N, 6] → [N, 3].
        var waT = new float[5 * 6];
        for (int o = 0; o < 6; o++) for (int k = 0; k < 5; k++) waT[k * 6 + o] = wa[o * 5 + k];
        m.WithInput("x", -1, 5)
            .WithInitializer("A.w", [5, 6], waT).WithInitializer("A.b", [6], ba)
            .WithInitializer("B.w", [6, 3], m.Normal(18, 0.5)).WithInitializer("B.b", [3], m.Normal(3, 0.1))
            .WithNode("MatMul", "A", ["x", "A.w"], ["a0"])
            .WithNode("Add", "A.add", ["a0", "A.b"], ["a"])
            .WithNode("MatMul", "B", ["a", "B.w"], ["b0"])
            .WithNode("Add", "B.add", ["b0", "B.b"], ["y"])
            .WithOutput("y");
        var original = m.Model();
        int[] keep = [0, 1, 2, 3];
        var pruned = original.Clone();
        ModelOps.SliceAxis(pruned, "A.w", 1, keep);
        ModelOps.SliceAxis(pruned, "A.b", 0, keep);
        ModelOps.SliceAxis(pruned, "B.w", 0, keep);
        pruned.Graph.Reindex();

        var calib = new GraphBuilder(seed: 20);
        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = keep }),
            [ModelOps.Floats("x", [64, 5], calib.Normal(64 * 5))], Tight);

        Assert.True(report.Layers.Single().Fitted);
        var test = ModelOps.Floats("x", [7, 5], calib.Normal(35));
        Assert.True(ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test)) < 1e-4);
    }

    [Fact]
    public void Convs_sharing_one_weight_are_fitted_together()
    {
        // Like a detection head applied to several pyramid levels: one weight, two Conv nodes.
        var m = new GraphBuilder(seed: 23);
        var (wa, ba) = CombinedFilters(m, 6, 3 * 9, LinearCombos);
        m.WithInput("x", -1, 3, 12, 12)
            .WithInitializer("A.w", [6, 3, 3, 3], wa).WithInitializer("A.b", [6], ba)
            .WithInitializer("H.w", [4, 6, 3, 3], m.Normal(4 * 6 * 9, 0.3)).WithInitializer("H.b", [4], m.Normal(4, 0.1))
            .WithNode("Conv", "A1", ["x", "A.w", "A.b"], ["a1"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("MaxPool", "pool", ["x"], ["x2"], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }))
            .WithNode("Conv", "A2", ["x2", "A.w", "A.b"], ["a2"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Conv", "H1", ["a1", "H.w", "H.b"], ["y1"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Conv", "H2", ["a2", "H.w", "H.b"], ["y2"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Flatten", "f1", ["y1"], ["g1"], ("axis", 1L))
            .WithNode("Flatten", "f2", ["y2"], ["g2"], ("axis", 1L))
            .WithNode("Concat", "cat", ["g1", "g2"], ["y"], ("axis", 1L))
            .WithOutput("y");
        var original = m.Model();
        int[] keep = [0, 1, 2, 3];
        var pruned = Prune(original, ("A", keep), ["A.w", "A.b"], ["H.w"]);

        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A1"] = keep, ["A2"] = keep }), [Images(8, 3, 12, 12, 3)], Tight);

        var layer = Assert.Single(report.Layers);
        Assert.Equal("H1, H2", layer.Name);
        Assert.True(layer.Fitted, layer.Skipped);
        Assert.Equal(8 * 144 + 8 * 36, layer.Rows);
        var test = Images(2, 3, 12, 12, 4);
        double error = ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test));
        Assert.True(error < 1e-4, $"error {error}, layer {layer}");
    }
}
