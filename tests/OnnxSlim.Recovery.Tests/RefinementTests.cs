using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Runtime.Recovery;

namespace OnnxSlim.Recovery.Tests;

/// <summary>The refinements beyond plain layer-wise least squares, skips, and reproducibility, on small random networks.</summary>
public sealed class RefinementTests
{
    /// <summary>
    /// stem → [conv A → Relu → conv B] + stem → Relu → head: a residual block whose stream (the stem's
    /// output) loses a channel, so the skip operand carries error that only B can compensate.
    /// </summary>
    private static (OnnxModel Original, OnnxModel Pruned, Dictionary<string, int[]> Kept) ResidualBlock()
    {
        var m = new TinyModel(31);
        m.Input("x", -1, 3, 10, 10)
            .Initializer("S.w", [6, 3, 3, 3], m.Normal(6 * 27, 0.4)).Initializer("S.b", [6], m.Normal(6, 0.1))
            .Initializer("A.w", [8, 6, 3, 3], m.Normal(8 * 54, 0.2)).Initializer("A.b", [8], m.Normal(8, 0.1))
            .Initializer("B.w", [6, 8, 3, 3], m.Normal(6 * 72, 0.2)).Initializer("B.b", [6], m.Normal(6, 0.1))
            .Initializer("H.w", [4, 6, 1, 1], m.Normal(24, 0.5))
            .Node("Conv", "S", ["x", "S.w", "S.b"], ["s"], ("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Conv", "A", ["s", "A.w", "A.b"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Relu", "ra", ["a"], ["ar"])
            .Node("Conv", "B", ["ar", "B.w", "B.b"], ["b"], ("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Add", "add", ["b", "s"], ["z"])
            .Node("Relu", "rz", ["z"], ["zr"])
            .Node("Conv", "H", ["zr", "H.w"], ["y"])
            .Output("y");
        var original = m.Build();
        var pruned = original.Clone();
        int[] stream = [0, 1, 2, 4, 5], inner = [0, 2, 3, 5, 6, 7];
        foreach (var t in new[] { "S.w", "S.b" }) TinyModel.SliceAxis(pruned, t, 0, stream);
        TinyModel.SliceAxis(pruned, "A.w", 1, stream);
        TinyModel.SliceAxis(pruned, "A.w", 0, inner);
        TinyModel.SliceAxis(pruned, "A.b", 0, inner);
        TinyModel.SliceAxis(pruned, "B.w", 1, inner);
        TinyModel.SliceAxis(pruned, "B.w", 0, stream);
        TinyModel.SliceAxis(pruned, "B.b", 0, stream);
        TinyModel.SliceAxis(pruned, "H.w", 1, stream);
        pruned.Graph.Reindex();
        return (original, pruned, new Dictionary<string, int[]> { ["S"] = stream, ["A"] = inner, ["B"] = stream });
    }

    private static NamedTensor Images(int n, int seed) => TinyModel.Tensor4("x", [n, 3, 10, 10], new TinyModel(seed).Normal(n * 300));

    private static double OutputError(OnnxModel original, OnnxModel pruned)
    {
        var test = Images(32, 77);
        var a = TinyModel.Run(original, test);
        var b = TinyModel.Run(pruned, test);
        double e = 0, s = 0;
        for (int i = 0; i < a.Length; i++) { e += (a[i] - b[i]) * (a[i] - b[i]); s += a[i] * a[i]; }
        return Math.Sqrt(e / s);
    }

    [Fact]
    public void Residual_targets_compensate_the_skip_and_lower_the_output_error()
    {
        double ErrorWith(bool residual)
        {
            var (original, pruned, kept) = ResidualBlock();
            Reconstruction.Run(original, pruned, kept, [Images(64, 1)], new ReconstructionOptions { ResidualTargets = residual, ReluIterations = 0 });
            return OutputError(original, pruned);
        }
        double plain = ErrorWith(false), residual = ErrorWith(true);
        Assert.True(residual < 0.9 * plain, $"output error {plain:0.0000} plain, {residual:0.0000} with residual targets");
    }

    [Fact]
    public void Relu_aware_fit_lowers_the_error_after_the_relu()
    {
        double ErrorWith(int iterations)
        {
            var (original, pruned, kept) = ResidualBlock();
            Reconstruction.Run(original, pruned, kept, [Images(64, 1)], new ReconstructionOptions { ReluIterations = iterations });
            return OutputError(original, pruned);
        }
        double plain = ErrorWith(0), aware = ErrorWith(4);
        Assert.True(aware < plain, $"output error {plain:0.0000} plain, {aware:0.0000} ReLU-aware");
    }

    [Fact]
    public void Same_inputs_and_seed_give_identical_weights()
    {
        byte[] Run()
        {
            var (original, pruned, kept) = ResidualBlock();
            Reconstruction.Run(original, pruned, kept, [Images(64, 1)], new ReconstructionOptions { SamplePositions = 3000, Seed = 5 });
            return pruned.ToBytes();
        }
        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void Report_lists_every_layer_in_graph_order_with_errors_that_drop()
    {
        var (original, pruned, kept) = ResidualBlock();
        var lines = new List<string>();
        var report = Reconstruction.Run(original, pruned, kept, [Images(64, 1)], new ReconstructionOptions { Log = lines.Add });

        Assert.Equal(["A", "B", "H"], report.Layers.Select(l => l.Name));
        Assert.All(report.Layers, l => Assert.True(l.Fitted && l.ErrorAfter < l.ErrorBefore && l.Rows == 6400, l.ToString()));
        Assert.Equal(3, lines.Count);
        Assert.Equal(64, report.Images);
        Assert.True(report.Levels >= 2 && report.RuntimeRuns >= 2 && report.Seconds >= report.RuntimeSeconds);
    }

    [Fact]
    public void A_weight_also_read_by_another_operator_is_skipped_with_a_reason()
    {
        var m = new TinyModel(41);
        m.Input("x", -1, 4, 6, 6)
            .Initializer("A.w", [4, 4, 1, 1], m.Normal(16)).Initializer("B.w", [3, 4, 1, 1], m.Normal(12))
            .Node("Conv", "A", ["x", "A.w"], ["a"])
            .Node("Conv", "B", ["a", "B.w"], ["b"])
            .Node("ReduceSum", "peek", ["B.w"], ["bw"], ("keepdims", 0L))
            .Node("Mul", "mix", ["b", "bw"], ["y"])
            .Output("y");
        var original = m.Build();
        var pruned = original.Clone();
        int[] keep = [0, 1, 3];
        TinyModel.SliceAxis(pruned, "A.w", 0, keep);
        TinyModel.SliceAxis(pruned, "B.w", 1, keep);
        pruned.Graph.Reindex();

        var report = Reconstruction.Run(original, pruned, new Dictionary<string, int[]> { ["A"] = keep },
            [TinyModel.Tensor4("x", [4, 4, 6, 6], m.Normal(576))]);

        var layer = Assert.Single(report.Layers);
        Assert.False(layer.Fitted);
        Assert.Contains("also read by ReduceSum 'peek'", layer.Skipped);
    }

    [Fact]
    public void Bad_calibration_inputs_are_refused()
    {
        var (original, pruned, kept) = ResidualBlock();
        Assert.Throws<ArgumentException>(() => Reconstruction.Run(original, pruned, kept, []));
        var e = Assert.Throws<ArgumentException>(() => Reconstruction.Run(original, pruned, kept,
            [TinyModel.Tensor4("x", [2, 3, 10, 10], new float[10])]));
        Assert.Contains("holds 10 values", e.Message);
        Assert.Throws<ArgumentException>(() => Reconstruction.Run(original, original, kept, [Images(2, 1)]));
    }
}
