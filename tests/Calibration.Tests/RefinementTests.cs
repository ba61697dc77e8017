using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Calibration;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>The refinements beyond plain layer-wise least squares, skips, and reproducibility, on small random networks.</summary>
public sealed class RefinementTests
{
    /// <summary>
    /// P → Relu → stem S → [conv A → Relu → conv B] + S → Relu → head H. P loses channels, so the re-fitted
    /// stem only approximates its original output: the skip operand carries error that only B can compensate.
    /// </summary>
    private static (OnnxModel Original, OnnxModel Pruned, Dictionary<string, int[]> Kept) ResidualBlock()
    {
        var m = new GraphBuilder(seed: 31);
        m.WithInput("x", -1, 3, 10, 10)
            .WithInitializer("P.w", [5, 3, 3, 3], m.Normal(5 * 27, 0.4)).WithInitializer("P.b", [5], m.Normal(5, 0.1))
            .WithInitializer("S.w", [6, 5, 3, 3], m.Normal(6 * 45, 0.3)).WithInitializer("S.b", [6], m.Normal(6, 0.1))
            .WithInitializer("A.w", [8, 6, 3, 3], m.Normal(8 * 54, 0.2)).WithInitializer("A.b", [8], m.Normal(8, 0.1))
            .WithInitializer("B.w", [6, 8, 3, 3], m.Normal(6 * 72, 0.2)).WithInitializer("B.b", [6], m.Normal(6, 0.1))
            .WithInitializer("H.w", [4, 6, 1, 1], m.Normal(24, 0.5))
            .WithNode("Conv", "P", ["x", "P.w", "P.b"], ["p"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Relu", "rp", ["p"], ["pr"])
            .WithNode("Conv", "S", ["pr", "S.w", "S.b"], ["s"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Conv", "A", ["s", "A.w", "A.b"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Relu", "ra", ["a"], ["ar"])
            .WithNode("Conv", "B", ["ar", "B.w", "B.b"], ["b"], ("pads", new long[] { 1, 1, 1, 1 }))
            .WithNode("Add", "add", ["b", "s"], ["z"])
            .WithNode("Relu", "rz", ["z"], ["zr"])
            .WithNode("Conv", "H", ["zr", "H.w"], ["y"])
            .WithOutput("y");
        var original = m.Model();
        var pruned = original.Clone();
        int[] first = [0, 2, 3, 4], stream = [0, 1, 2, 4, 5], inner = [0, 2, 3, 5, 6, 7];
        foreach (var t in new[] { "P.w", "P.b" }) ModelOps.SliceAxis(pruned, t, 0, first);
        ModelOps.SliceAxis(pruned, "S.w", 1, first);
        foreach (var t in new[] { "S.w", "S.b" }) ModelOps.SliceAxis(pruned, t, 0, stream);
        ModelOps.SliceAxis(pruned, "A.w", 1, stream);
        ModelOps.SliceAxis(pruned, "A.w", 0, inner);
        ModelOps.SliceAxis(pruned, "A.b", 0, inner);
        ModelOps.SliceAxis(pruned, "B.w", 1, inner);
        ModelOps.SliceAxis(pruned, "B.w", 0, stream);
        ModelOps.SliceAxis(pruned, "B.b", 0, stream);
        ModelOps.SliceAxis(pruned, "H.w", 1, stream);
        pruned.Graph.Reindex();
        return (original, pruned, new Dictionary<string, int[]> { ["P"] = first, ["S"] = stream, ["A"] = inner, ["B"] = stream });
    }

    private static NamedTensor Images(int n, int seed) => ModelOps.Floats("x", [n, 3, 10, 10], new GraphBuilder(seed: seed).Normal(n * 300));

    private static double OutputError(OnnxModel original, OnnxModel pruned)
    {
        var test = Images(32, 77);
        var a = ModelOps.Run(original, test);
        var b = ModelOps.Run(pruned, test);
        double e = 0, s = 0;
        for (int i = 0; i < a.Length; i++) { e += (a[i] - b[i]) * (a[i] - b[i]); s += a[i] * a[i]; }
        return Math.Sqrt(e / s);
    }

    [Fact]
    public void Residual_targets_absorb_the_skip_error_exactly()
    {
        // x → S → s0 → (+δ) → s;  s0 → A → B;  z = B + s → Relu. A's channels 4, 5 are linear
        // combinations of 0..3, so B can be re-fitted exactly; the pruned stream is off by a per-channel
        // δ, which only B's bias can take back, and only if B targets the sum z.
        OnnxModel Build(float[] shift)
        {
            var m = new GraphBuilder(seed: 53);
            var wa = m.Normal(6 * 36, 0.3);
            for (int k = 0; k < 36; k++)
            {
                wa[4 * 36 + k] = 0.6f * wa[k] - wa[2 * 36 + k];
                wa[5 * 36 + k] = wa[36 + k] + 0.5f * wa[3 * 36 + k];
            }
            m.WithInput("x", -1, 3, 8, 8)
                .WithInitializer("S.w", [4, 3, 3, 3], m.Normal(4 * 27, 0.4))
                .WithInitializer("shift", [1, 4, 1, 1], shift)
                .WithInitializer("A.w", [6, 4, 3, 3], wa)
                .WithInitializer("B.w", [4, 6, 3, 3], m.Normal(4 * 54, 0.3)).WithInitializer("B.b", [4], m.Normal(4, 0.1))
                .WithNode("Conv", "S", ["x", "S.w"], ["s0"], ("pads", new long[] { 1, 1, 1, 1 }))
                .WithNode("Add", "shifted", ["s0", "shift"], ["s"])
                .WithNode("Conv", "A", ["s0", "A.w"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
                .WithNode("Conv", "B", ["a", "B.w", "B.b"], ["b"], ("pads", new long[] { 1, 1, 1, 1 }))
                .WithNode("Add", "add", ["b", "s"], ["z"])
                .WithNode("Relu", "rz", ["z"], ["y"])
                .WithOutput("y");
            return m.Model();
        }
        double ErrorWith(bool residual)
        {
            var original = Build(new float[4]);
            var pruned = Build([0.9f, -0.6f, 1.5f, -1.2f]);
            int[] keep = [0, 1, 2, 3];
            ModelOps.SliceAxis(pruned, "A.w", 0, keep);
            ModelOps.SliceAxis(pruned, "B.w", 1, keep);
            pruned.Graph.Reindex();
            var calib = ModelOps.Floats("x", [32, 3, 8, 8], new GraphBuilder(seed: 2).Normal(32 * 192));
            Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = keep }), [calib],
                new ReconstructionOptions { ResidualTargets = residual, Ridge = 1e-9 });
            var test = ModelOps.Floats("x", [4, 3, 8, 8], new GraphBuilder(seed: 3).Normal(4 * 192));
            return ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test));
        }
        double plain = ErrorWith(false), residual = ErrorWith(true);
        Assert.True(plain > 0.01, $"the shifted stream should show without residual targets (error {plain})");
        Assert.True(residual < 1e-4, $"residual targets should absorb the shift exactly (error {residual})");
    }

    [Fact]
    public void A_following_batchnorm_edited_in_the_pruned_model_is_accounted_for()
    {
        // A (channels 4, 5 linear in 0..3) → B → BatchNorm → Relu. Data-free compensation may move the
        // BatchNorm's mean in the pruned model; B must be fitted to the BatchNorm's original output.
        OnnxModel Build(float meanShift)
        {
            var m = new GraphBuilder(seed: 61);
            var wa = m.Normal(6 * 27, 0.3);
            for (int k = 0; k < 27; k++)
            {
                wa[4 * 27 + k] = 0.5f * wa[27 + k] + wa[2 * 27 + k];
                wa[5 * 27 + k] = wa[k] - 0.7f * wa[3 * 27 + k];
            }
            var mean = m.Normal(4, 0.2);
            for (int i = 0; i < 4; i++) mean[i] += meanShift * (i + 1);
            m.WithInput("x", -1, 3, 8, 8)
                .WithInitializer("A.w", [6, 3, 3, 3], wa)
                .WithInitializer("B.w", [4, 6, 3, 3], m.Normal(4 * 54, 0.3))
                .WithInitializer("bn.scale", [4], [1.5f, -0.8f, 0.6f, 2f]).WithInitializer("bn.bias", [4], m.Normal(4, 0.3))
                .WithInitializer("bn.mean", [4], mean).WithInitializer("bn.var", [4], [0.5f, 1f, 2f, 0.3f])
                .WithNode("Conv", "A", ["x", "A.w"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
                .WithNode("Conv", "B", ["a", "B.w"], ["b"], ("pads", new long[] { 1, 1, 1, 1 }))
                .WithNode("BatchNormalization", "bn", ["b", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["z"])
                .WithNode("Relu", "r", ["z"], ["y"])
                .WithOutput("y");
            return m.Model();
        }
        var original = Build(0);
        var pruned = Build(0.4f);
        int[] keep = [0, 1, 2, 3];
        ModelOps.SliceAxis(pruned, "A.w", 0, keep);
        ModelOps.SliceAxis(pruned, "B.w", 1, keep);
        pruned.Graph.Reindex();
        var calib = ModelOps.Floats("x", [32, 3, 8, 8], new GraphBuilder(seed: 4).Normal(32 * 192));

        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = keep }), [calib], new ReconstructionOptions { Ridge = 1e-9 });

        Assert.True(report.Layers.Single().Fitted);
        var test = ModelOps.Floats("x", [4, 3, 8, 8], new GraphBuilder(seed: 5).Normal(4 * 192));
        double error = ModelOps.RelativeMaxError(ModelOps.Run(original, test), ModelOps.Run(pruned, test));
        Assert.True(error < 1e-4, $"error {error}");
    }

    [Fact]
    public void Relu_aware_fit_lowers_the_error_after_the_relu()
    {
        double ErrorWith(int iterations)
        {
            var (original, pruned, kept) = ResidualBlock();
            Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept), [Images(64, 1)], new ReconstructionOptions { ReluIterations = iterations });
            return OutputError(original, pruned);
        }
        double plain = ErrorWith(0), aware = ErrorWith(4);
        Assert.True(aware < plain, $"output error {plain:0.0000} plain, {aware:0.0000} ReLU-aware");
    }

    /// <summary>The residual block re-fitted with <paramref name="options"/> on 64 images, run on 8 others.</summary>
    private static float[] ResidualBlockOutputs(ReconstructionOptions options)
    {
        var (original, pruned, kept) = ResidualBlock();
        Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept), [Images(64, 1)], options);
        return ModelOps.Run(pruned, Images(8, 2));
    }

    [Fact]
    public void Relu_aware_re_solves_stop_once_the_weights_change_less_than_the_tolerance()
    {
        // Any change passes a huge tolerance: one re-solve, as if only one were allowed; with none, all four run.
        var one = ResidualBlockOutputs(new ReconstructionOptions { ReluIterations = 1, ReluTolerance = 0, ReluErrorTolerance = 0 });
        Assert.Equal(one, ResidualBlockOutputs(new ReconstructionOptions { ReluIterations = 4, ReluTolerance = 1e300, ReluErrorTolerance = 0 }));
        Assert.NotEqual(one, ResidualBlockOutputs(new ReconstructionOptions { ReluIterations = 4, ReluTolerance = 0, ReluErrorTolerance = 0 }));
    }

    [Fact]
    public void Relu_aware_re_solves_stop_once_the_error_falls_less_than_the_error_tolerance()
    {
        // No gain passes a tolerance of 1 (the error would have to reach zero): one re-solve, as if only one were allowed;
        // with 0, all four run as before the option existed.
        var one = ResidualBlockOutputs(new ReconstructionOptions { ReluIterations = 1, ReluTolerance = 0, ReluErrorTolerance = 0 });
        var four = ResidualBlockOutputs(new ReconstructionOptions { ReluIterations = 4, ReluTolerance = 0, ReluErrorTolerance = 0 });
        Assert.Equal(one, ResidualBlockOutputs(new ReconstructionOptions { ReluIterations = 4, ReluTolerance = 0, ReluErrorTolerance = 1 }));
        Assert.NotEqual(one, four);
    }

    /// <summary>
    /// x → A → Relu → B → Relu → C, B with 32 outputs (four sampled): A keeps 5 of its 8, B (46 features, 3,072 rows) is
    /// re-fitted with <paramref name="options"/> on 48 images; the outputs on 8 others.
    /// </summary>
    private static float[] WideReluLayerOutputs(ReconstructionOptions options)
    {
        var calibration = ModelOps.Floats("x", [48, 3, 8, 8], new GraphBuilder(seed: 41).Normal(48 * 192));
        var test = ModelOps.Floats("x", [8, 3, 8, 8], new GraphBuilder(seed: 42).Normal(8 * 192));
        var b = new GraphBuilder(seed: 7);
        string h = b.Input("x", -1, 3, 8, 8);
        h = b.Node("Relu", [b.Conv(h, 3, 8)]);
        h = b.Node("Relu", [b.Conv(h, 8, 32, weight: b.Init("w", [32, 8, 3, 3], b.Normal(32 * 72, 0.6)))]);
        h = b.Conv(h, 32, 4);
        b.Output(h, -1, 4, 8, 8);
        var original = b.Model();
        var pruned = FirstConvPruned(original);
        Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]>()), [calibration], options);
        return ModelOps.Run(pruned, test);
    }

    [Fact]
    public void Relu_aware_re_solve_is_skipped_when_a_sample_of_the_outputs_gains_less_than_the_error_tolerance()
    {
        var lines = new List<string>();
        float[] OutputsWith(double errorTolerance) => WideReluLayerOutputs(
            new ReconstructionOptions { ReluIterations = 1, ReluTolerance = 0, ReluErrorTolerance = errorTolerance, Log = lines.Add });
        // A tiny tolerance lets the sampled gain through: the one re-solve runs, as with no tolerance at all. No gain passes
        // a tolerance of 1 (half of it: the sample's error would have to halve): the plain fit's weights stay.
        var resolved = OutputsWith(0);
        Assert.Equal(resolved, OutputsWith(1e-12));
        Assert.Contains("ReLU-aware, 1 re-solve)", lines.Last());
        Assert.NotEqual(resolved, OutputsWith(1));
        Assert.Contains("ReLU-aware, 0 re-solves)", lines.Last());
    }

    [Fact]
    public void A_layer_over_the_re_solves_budget_gets_the_plain_fit_of_its_stored_rows()
    {
        // B's products over its rows: 3,072 rows × 46 features × 32 outputs = 4,521,984 multiply-adds. A budget just under that
        // fits it plainly: the weights of a ReLU-aware fit whose first re-solve is skipped (the same sums, from the same stored
        // rows), and no re-solve is run; just over it, the ReLU-aware fit, with other weights. Without the plain fit's variance
        // restoration, which the ReLU-aware fit does not do.
        var lines = new List<string>();
        var plain = WideReluLayerOutputs(new ReconstructionOptions { MaxReluProductMacs = 4_521_983, RestoreVariance = false, Log = lines.Add });
        Assert.Contains(lines, l => l.Contains("3072 rows × 46"));
        Assert.DoesNotContain(lines, l => l.Contains("aware"));
        Assert.Equal(plain, WideReluLayerOutputs(new ReconstructionOptions { ReluErrorTolerance = 1, RestoreVariance = false }));
        lines.Clear();
        var aware = WideReluLayerOutputs(new ReconstructionOptions { MaxReluProductMacs = 4_521_984, ReluErrorTolerance = 0, Log = lines.Add });
        Assert.Contains(lines, l => l.Contains("3072 rows × 46") && l.Contains("ReLU-aware"));
        Assert.NotEqual(plain, aware);
    }

    [Fact]
    public void Hard_swish_is_recognised_with_its_floor_however_it_is_spelled()
    {
        var b = new GraphBuilder(seed: 3);
        string x = b.Input("x", -1, 2, 4, 4);
        string opset9 = b.Conv(x, 2, 2);
        GroupDrivenTests.HardSwish(b, opset9);
        string op = b.Conv(x, 2, 2);
        b.Node("HardSwish", [op]);
        string sigmoid = b.Conv(x, 2, 2);
        b.Node("Mul", [sigmoid, b.Node("HardSigmoid", [sigmoid], ("alpha", 0.25f), ("beta", 0.5f))]);
        string plain = b.Conv(x, 2, 2);
        b.Node("Mul", [plain, b.Node("Sigmoid", [plain])]);
        var graph = b.Model().Graph;
        Assert.Equal(-3, HardGate.Find(graph, opset9)!.Floor);
        Assert.Equal(-3, HardGate.Find(graph, op)!.Floor);
        Assert.Equal(-2, HardGate.Find(graph, sigmoid)!.Floor);
        Assert.Null(HardGate.Find(graph, plain)); // swish has no flat zero
        var gate = HardGate.Find(graph, opset9)!;
        Assert.Equal(0, gate.Apply(-4));
        Assert.Equal(2 * 5 / 6.0, gate.Apply(2), 12);
        Assert.Equal(5, gate.Apply(5), 12);
    }

    /// <summary>A copy of <paramref name="original"/> whose first Conv keeps 5 of its 8 outputs, the second Conv reading those.</summary>
    private static OnnxModel FirstConvPruned(OnnxModel original)
    {
        var pruned = original.Clone();
        int[] keep = [0, 2, 3, 5, 6];
        var first = pruned.Graph.Nodes.First(n => n.OpType == "Conv");
        var second = pruned.Graph.Nodes.Where(n => n.OpType == "Conv").ElementAt(1);
        ModelOps.SliceAxis(pruned, first.Input(1), 0, keep);
        ModelOps.SliceAxis(pruned, first.Input(2), 0, keep);
        ModelOps.SliceAxis(pruned, second.Input(1), 1, keep);
        pruned.Graph.Reindex();
        return pruned;
    }

    [Fact]
    public void Hard_swish_aware_fit_lowers_the_error_after_the_activation()
    {
        // The re-solves alone, without the variance restoration that follows both fits (restored, the two read 0.5451 / 0.5452 here).
        var calibration = ModelOps.Floats("x", [64, 3, 8, 8], new GraphBuilder(seed: 23).Normal(64 * 192));
        var test = ModelOps.Floats("x", [32, 3, 8, 8], new GraphBuilder(seed: 24).Normal(32 * 192));
        double ErrorWith(int iterations)
        {
            // x → A → hswish → B → hswish → C: A loses channels, B is re-fitted with the hard-swish after it.
            var b = new GraphBuilder(seed: 6);
            string h = b.Input("x", -1, 3, 8, 8);
            h = GroupDrivenTests.HardSwish(b, b.Conv(h, 3, 8));
            // B's outputs spread wide (σ ≈ 4), so that many fall below the gate's floor of −3.
            h = GroupDrivenTests.HardSwish(b, b.Conv(h, 8, 8, weight: b.Init("w", [8, 8, 3, 3], b.Normal(8 * 72, 0.6))));
            h = b.Conv(h, 8, 4);
            b.Output(h, -1, 4, 8, 8);
            var original = b.Model();
            var pruned = FirstConvPruned(original);
            var lines = new List<string>();
            Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]>()), [calibration],
                new ReconstructionOptions { ReluIterations = iterations, RestoreVariance = false, Log = lines.Add });
            if (iterations > 0) Assert.Contains(lines, l => l.Contains("hard-gate-aware"));
            var a = ModelOps.Run(original, test);
            var p = ModelOps.Run(pruned, test);
            double e = 0, t = 0;
            for (int i = 0; i < a.Length; i++) { e += (a[i] - p[i]) * (a[i] - p[i]); t += a[i] * a[i]; }
            return Math.Sqrt(e / t);
        }
        double plain = ErrorWith(0), aware = ErrorWith(4);
        Assert.True(aware < plain, $"output error {plain:0.0000} plain, {aware:0.0000} hard-swish-aware");
    }

    [Fact]
    public void A_relu_aware_fit_forms_its_sums_from_the_stored_rows_whatever_the_batches()
    {
        // x → P → Relu → A → Relu → C: P loses channels, A is re-fitted ReLU-aware. Its rows are kept for the re-solves, and
        // XᵀX, XᵀY are formed from them in one call when solving: per batch, each batch's rows were a flush of their own.
        OnnxModel Model()
        {
            var b = new GraphBuilder(seed: 9);
            string h = b.Input("x", -1, 3, 8, 8);
            h = b.Node("Relu", [b.Conv(h, 3, 8)]);
            h = b.Node("Relu", [b.Conv(h, 8, 8)]);
            h = b.Conv(h, 8, 4);
            b.Output(h, -1, 4, 8, 8);
            return b.Model();
        }
        var whole = RefitWithBatches(Model, 64, out var lines);
        Assert.Contains(lines, l => l.Contains("ReLU-aware"));
        // 3000 rows over 64 images: batches of 7 images are ~330 rows each, not a multiple of the 256-row flush.
        Assert.Equal(whole, RefitWithBatches(Model, 7, out _));
        Assert.Equal(whole, RefitWithBatches(Model, 1, out _));
    }

    [Fact]
    public void A_plain_fit_forms_its_sums_in_whole_flushes_whatever_the_batches()
    {
        // x → P → Relu → A: P loses channels, A (no Relu after it) is re-fitted plainly, keeping no rows. Its rows wait in
        // PendingRows and go into XᵀX, XᵀY a thousand at a time: per batch, each batch's rows were a flush of their own.
        OnnxModel Model()
        {
            var b = new GraphBuilder(seed: 9);
            string h = b.Input("x", -1, 3, 8, 8);
            h = b.Node("Relu", [b.Conv(h, 3, 8)]);
            h = b.Conv(h, 8, 6);
            b.Output(h, -1, 6, 8, 8);
            return b.Model();
        }
        var whole = RefitWithBatches(Model, 64, out var lines);
        Assert.Contains(lines, l => l.Contains("error") && l.Contains("3000 rows"));
        Assert.DoesNotContain(lines, l => l.Contains("ReLU-aware"));
        // 3000 rows over 64 images: batches of 7 images are ~330 rows each, not a multiple of the 256-row flush.
        Assert.Equal(whole, RefitWithBatches(Model, 7, out _));
        Assert.Equal(whole, RefitWithBatches(Model, 1, out _));
    }

    /// <summary>
    /// The model's first conv pruned (<see cref="FirstConvPruned"/>) and the rest re-fitted on 64 seeded images, at most
    /// <paramref name="maxBatch"/> per run, 3000 rows per layer: the re-fitted model's bytes and the reconstruction's log.
    /// </summary>
    private static byte[] RefitWithBatches(Func<OnnxModel> model, int maxBatch, out List<string> log)
    {
        var calibration = ModelOps.Floats("x", [64, 3, 8, 8], new GraphBuilder(seed: 25).Normal(64 * 192));
        var original = model();
        var pruned = FirstConvPruned(original);
        var lines = new List<string>();
        Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]>()), [calibration],
            new ReconstructionOptions { SamplePositions = 3000, MaxBatch = maxBatch, Log = lines.Add });
        log = lines;
        return pruned.ToBytes();
    }

    [Fact]
    public void Batching_and_the_activation_cache_do_not_change_the_result()
    {
        float[] Outputs(ReconstructionOptions options)
        {
            var (original, pruned, kept) = ResidualBlock();
            Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept), [Images(64, 1)], options with { SamplePositions = 2500 });
            return ModelOps.Run(pruned, Images(8, 77));
        }
        var reference = Outputs(new ReconstructionOptions());
        // Uneven batches (7 images: rows of one image never straddle two batches), and every pass from the inputs.
        Assert.True(ModelOps.RelativeMaxError(reference, Outputs(new ReconstructionOptions { MaxBatch = 7 })) < 1e-4);
        Assert.True(ModelOps.RelativeMaxError(reference, Outputs(new ReconstructionOptions { CacheBudgetBytes = 0 })) < 1e-4);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    public void Batches_run_side_by_side_and_consumed_beside_them_give_the_weights_of_one_thread_bit_for_bit(int maxBatch)
    {
        byte[] Run(bool alongside)
        {
            var (original, pruned, kept) = ResidualBlock();
            Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept), [Images(64, 1)],
                new ReconstructionOptions { SamplePositions = 3000, MaxBatch = maxBatch, ConsumeAlongside = alongside });
            return pruned.ToBytes();
        }
        var (_, sliced, _) = ResidualBlock();
        var alone = Run(alongside: false);
        Assert.NotEqual(sliced.ToBytes(), alone); // the weights were re-fitted
        Assert.Equal(alone, Run(alongside: true));
    }

    [Fact]
    public void Passes_on_one_ONNX_Runtime_thread_give_the_weights_of_its_default_threads_bit_for_bit()
    {
        byte[] Run(int threads)
        {
            var (original, pruned, kept) = ResidualBlock();
            Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept), [Images(64, 1)],
                new ReconstructionOptions { SamplePositions = 3000, MaxBatch = 7, PassThreads = threads });
            return pruned.ToBytes();
        }
        var (_, sliced, _) = ResidualBlock();
        var one = Run(1);
        Assert.NotEqual(sliced.ToBytes(), one); // the weights were re-fitted
        Assert.Equal(one, Run(0));
        Assert.Equal(one, Run(2));
    }

    [Fact]
    public void Same_inputs_and_seed_give_identical_weights()
    {
        byte[] Run()
        {
            var (original, pruned, kept) = ResidualBlock();
            Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept), [Images(64, 1)], new ReconstructionOptions { SamplePositions = 3000, Seed = 5 });
            return pruned.ToBytes();
        }
        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void Report_lists_every_layer_in_graph_order_with_errors_that_drop()
    {
        var (original, pruned, kept) = ResidualBlock();
        var lines = new List<string>();
        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept), [Images(64, 1)], new ReconstructionOptions { Log = lines.Add });

        Assert.Equal(["S", "A", "B", "H"], report.Layers.Select(l => l.Name));
        Assert.All(report.Layers, l => Assert.True(l.Fitted && l.ErrorAfter < l.ErrorBefore && l.Rows == 6400, l.ToString()));
        Assert.Equal(4, lines.Count);
        Assert.Equal(64, report.Images);
        Assert.True(report.Levels >= 2 && report.RuntimeRuns >= 2 && report.Seconds >= report.RuntimeSeconds);
    }

    [Fact]
    public void A_weight_also_read_by_another_operator_is_skipped_with_a_reason()
    {
        var m = new GraphBuilder(seed: 41);
        m.WithInput("x", -1, 4, 6, 6)
            .WithInitializer("A.w", [4, 4, 1, 1], m.Normal(16)).WithInitializer("B.w", [3, 4, 1, 1], m.Normal(12))
            .WithNode("Conv", "A", ["x", "A.w"], ["a"])
            .WithNode("Conv", "B", ["a", "B.w"], ["b"])
            .WithNode("ReduceSum", "peek", ["B.w"], ["bw"], ("keepdims", 0L))
            .WithNode("Mul", "mix", ["b", "bw"], ["y"])
            .WithOutput("y");
        var original = m.Model();
        var pruned = original.Clone();
        int[] keep = [0, 1, 3];
        ModelOps.SliceAxis(pruned, "A.w", 0, keep);
        ModelOps.SliceAxis(pruned, "B.w", 1, keep);
        pruned.Graph.Reindex();

        var report = Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = keep }),
            [ModelOps.Floats("x", [4, 4, 6, 6], m.Normal(576))]);

        var layer = Assert.Single(report.Layers);
        Assert.False(layer.Fitted);
        Assert.Contains("also read by ReduceSum 'peek'", layer.Skipped);
    }

    [Fact]
    public void Bad_calibration_inputs_are_refused()
    {
        var (original, pruned, kept) = ResidualBlock();
        Assert.Throws<ArgumentException>(() => Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept), []));
        var e = Assert.Throws<ArgumentException>(() => Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, kept),
            [ModelOps.Floats("x", [2, 3, 10, 10], new float[10])]));
        Assert.Contains("holds 10 values", e.Message);
        Assert.Throws<ArgumentException>(() => Reconstruction.Run(original, original, HandPruned.Layers(original, original, kept), [Images(2, 1)]));
    }
}
