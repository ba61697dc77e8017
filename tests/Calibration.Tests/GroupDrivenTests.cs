using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>Reconstruction driven by the channel groups and keep plan, as the pipeline runs it, on small chains.</summary>
public sealed class GroupDrivenTests
{
    /// <summary>x → A → Relu → B → Relu → C → Relu → D: A, B and C lose channels, so B, C and D are re-fitted level by level.</summary>
    private static OnnxModel Chain(int seed)
    {
        var b = new GraphBuilder(seed: seed);
        string h = b.Input("x", -1, 3, 8, 8);
        h = b.Relu(b.Conv(h, 3, 6));
        h = b.Relu(b.Conv(h, 6, 6));
        h = b.Relu(b.Conv(h, 6, 6));
        h = b.Conv(h, 6, 4);
        b.Output(h, -1, 4, 8, 8);
        return b.Model();
    }

    private static (OnnxModel Original, OnnxModel Pruned, List<RefitLayer> Layers) Prune(OnnxModel model)
    {
        var original = model.Clone();
        var pruned = model.Clone();
        var groups = Harness.Analyze(pruned);
        var keep = groups.Prunable.Where(g => g.Width == 6).ToDictionary(g => g.Id, g => new[] { 0, 2, 3, 5 });
        Assert.Equal(3, keep.Count);
        var originalOf = pruned.Graph.Nodes.Zip(original.Graph.Nodes).ToDictionary(p => p.First, p => p.Second);
        ChannelPruner.Apply(pruned, groups, keep, RewriteOptions.Plain);
        return (original, pruned, RefitLayer.FromGroups(groups, keep, pruned.Graph, n => originalOf.GetValueOrDefault(n)));
    }

    [Fact]
    public void The_readers_of_pruned_groups_are_the_layers_refitted()
    {
        var (original, pruned, layers) = Prune(Chain(3));
        var convs = pruned.Graph.Nodes.Where(n => n.OpType == "Conv").Select(n => n.Name).ToList();
        Assert.Equal(convs.Skip(1), layers.Select(l => l.Pruned.Name));
        Assert.All(layers, l => Assert.Equal(l.Pruned.Name, l.Original.Name));
        // B and C produce pruned groups too: their kept outputs come from the plan; D keeps all.
        Assert.Equal([0, 2, 3, 5], Assert.IsType<int[]>(layers[0].KeptOutputs));
        Assert.Null(layers[2].KeptOutputs);
        var calibration = ModelOps.Floats("x", [16, 3, 8, 8], new GraphBuilder(seed: 9).Normal(16 * 192));
        var report = Reconstruction.Run(original, pruned, layers, [calibration]);
        Assert.Equal(3, report.FittedCount);
    }

    /// <summary>
    /// Regression: with a cache that holds one activation, storing a level's new value evicted the cut value the
    /// same pass was starting from, and reading it failed with KeyNotFoundException (ResNet-50 at 64 images,
    /// PP-OCRv4 det at --cr 0.3).
    /// </summary>
    [Fact]
    public void A_cache_too_small_for_two_activations_never_evicts_what_the_running_pass_reads()
    {
        var (original, pruned, layers) = Prune(Chain(5));
        var calibration = ModelOps.Floats("x", [8, 3, 8, 8], new GraphBuilder(seed: 11).Normal(8 * 192));
        // Room for one pruned activation (8 samples × 4 kept channels × 8 × 8).
        long activation = 8L * 4 * 8 * 8 * sizeof(float);
        var (_, tight, tightLayers) = Prune(Chain(5));
        var report = Reconstruction.Run(original, tight, tightLayers, [calibration], new ReconstructionOptions { CacheBudgetBytes = activation });
        Assert.True(report.FittedCount == 3, string.Join("; ", report.Layers.Select(l => $"{l.Name}: {l.Skipped}")));
        // The cache only saves recomputation: the weights are the same as with room for everything.
        Reconstruction.Run(original, pruned, layers, [calibration]);
        Assert.Equal(pruned.ToBytes(), tight.ToBytes());
    }

    /// <summary>x → A → Relu → B ─┬→ C → Relu → D → + → Relu → E: B's output is the skip D's residual Add reads.</summary>
    private static OnnxModel Residual(int seed)
    {
        var b = new GraphBuilder(seed: seed);
        string h = b.Input("x", -1, 3, 8, 8);
        h = b.Relu(b.Conv(h, 3, 6));
        string skip = b.Conv(h, 6, 6);
        string r = b.Conv(b.Relu(b.Conv(skip, 6, 6)), 6, 6);
        h = b.Conv(b.Relu(b.Node("Add", [r, skip])), 6, 4);
        b.Output(h, -1, 4, 8, 8);
        return b.Model();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Targets_recorded_in_the_ranking_pass_give_the_weights_a_pass_of_their_own_gives(bool residual)
    {
        OnnxModel Model() => residual ? Residual(7) : Chain(5);
        var calibration = ModelOps.Floats("x", [8, 3, 8, 8], new GraphBuilder(seed: 12).Normal(8 * 192));
        var (original, pruned, layers) = Prune(Model());
        var (_, fromRecording, recordedLayers) = Prune(Model());
        var ranked = Model();
        var groups = Harness.Analyze(ranked);
        using var recording = new TargetRecording(8);
        CalibratedRanking.Measure(ranked, groups, groups.Prunable, CalibrationData.FromTensors([calibration]), seed: 0, recording: recording);
        Assert.True(recording.Bytes > 0);

        var passes = new List<string>();
        Reconstruction.Run(original, pruned, layers, [calibration]);
        var report = Reconstruction.Run(original, fromRecording, recordedLayers, [calibration], new ReconstructionOptions { PassLog = passes.Add }, recording);
        Assert.Equal(layers.Count, report.FittedCount);
        Assert.Contains(passes, l => l.StartsWith($"targets of {layers.Count} of {layers.Count} layers from the ranking's pass"));
        Assert.DoesNotContain(passes, l => l.StartsWith("pass over the original model"));
        Assert.True(ModelOps.RelativeMaxError(ModelOps.Run(pruned, calibration), ModelOps.Run(fromRecording, calibration)) < 1e-5);
    }

    /// <summary>
    /// x → A → Relu → Conv → <paramref name="depth"/> Relus → h ─┬→ GlobalAveragePool → B (1×1) → Sigmoid → × h → C → Relu → D:
    /// a squeeze-excitation block behind a long stem.
    /// </summary>
    private static OnnxModel Excited(int seed, int depth)
    {
        var b = new GraphBuilder(seed: seed);
        string x = b.Input("x", -1, 3, 8, 8);
        string h = b.Conv(b.Relu(b.Conv(x, 3, 6)), 6, 6);
        for (int i = 0; i < depth; i++) h = b.Relu(h);
        string scale = b.Node("Sigmoid", [b.Conv(b.Node("GlobalAveragePool", [h]), 6, 6, k: 1)]);
        string y = b.Conv(b.Relu(b.Conv(b.Node("Mul", [h, scale]), 6, 6)), 6, 4);
        b.Output(y, -1, 4, 8, 8);
        return b.Model();
    }

    /// <summary>
    /// The SE conv B is re-fitted a level before C, whose input B scales: C's pass cannot start from B's cached input,
    /// and without more it ran the model from its input again. B's pass also caches h (no layer still to be re-fitted lies
    /// before it, and the stem is long), so C's pass starts there; the weights are the same bits either way. Behind a
    /// short stem h is recomputed.
    /// </summary>
    [Fact]
    public void A_pass_caches_the_values_later_passes_would_recompute_at_length_and_the_weights_do_not_change()
    {
        var calibration = ModelOps.Floats("x", [8, 3, 8, 8], new GraphBuilder(seed: 15).Normal(8 * 192));
        var (original, cached, layers) = Prune(Excited(8, 70));
        var (_, recomputed, recomputedLayers) = Prune(Excited(8, 70));
        var passes = new List<string>();
        var report = Reconstruction.Run(original, cached, layers, [calibration], new ReconstructionOptions { PassLog = passes.Add });
        var again = new List<string>();
        Reconstruction.Run(original, recomputed, recomputedLayers, [calibration], new ReconstructionOptions { PassLog = again.Add, CacheForLaterPasses = false });
        Assert.True(report.Levels >= 2, $"{report.Levels} levels");
        Assert.Contains(passes, l => l.Contains("more cached for later passes"));
        Assert.DoesNotContain(again, l => l.Contains("more cached for later passes"));
        static int Nodes(List<string> log) => log.Where(l => l.StartsWith("pass over the pruned model: ")).Sum(l => int.Parse(l.Split(' ')[5]));
        Assert.True(Nodes(passes) < Nodes(again), $"{Nodes(passes)} nodes run, {Nodes(again)} without");
        Assert.Equal(recomputed.ToBytes(), cached.ToBytes());

        var (shortOriginal, shortStem, shortLayers) = Prune(Excited(8, 2));
        var shortPasses = new List<string>();
        Reconstruction.Run(shortOriginal, shortStem, shortLayers, [calibration], new ReconstructionOptions { PassLog = shortPasses.Add });
        Assert.DoesNotContain(shortPasses, l => l.Contains("more cached for later passes"));
    }

    /// <summary>
    /// The ranking's pass probed the original model's shapes on the same first sample: the reconstruction takes that
    /// probe instead of running the whole original model again, and fits the same weights bit for bit.
    /// </summary>
    [Fact]
    public void The_reconstruction_takes_the_ranking_pass_probe_of_the_original_and_fits_the_same_bits()
    {
        var calibration = ModelOps.Floats("x", [8, 3, 8, 8], new GraphBuilder(seed: 14).Normal(8 * 192));
        var (original, probedAgain, layers) = Prune(Residual(7));
        var (_, fromProbe, probeLayers) = Prune(Residual(7));
        var ranked = Residual(7);
        var groups = Harness.Analyze(ranked);
        using var recording = new TargetRecording(8);
        CalibratedRanking.Measure(ranked, groups, groups.Prunable, CalibrationData.FromTensors([calibration]), seed: 0, recording: recording);
        var probe = Assert.NotNull(recording.OriginalProbe);
        Assert.Contains(original.Graph.Nodes[^1].Outputs[0], probe.Shapes.Keys);

        var taken = Reconstruction.Run(original, fromProbe, probeLayers, [calibration], null, recording);
        recording.OriginalProbe = null;
        var probed = Reconstruction.Run(original, probedAgain, layers, [calibration], null, recording);
        Assert.Equal(probed.RuntimeRuns - 1, taken.RuntimeRuns);
        Assert.True(taken.FittedCount > 0);
        Assert.Equal(probedAgain.ToBytes(), fromProbe.ToBytes());
    }

    /// <summary>
    /// The depthwise convs of the pruned groups are re-fitted too, so the ranking's pass records their targets: the
    /// reconstruction then never runs the original model (it ran all of PP-OCRv4 rec again for its depthwise convs alone).
    /// </summary>
    [Fact]
    public void The_ranking_pass_records_the_targets_of_depthwise_convs_too()
    {
        var calibration = ModelOps.Floats("x", [8, 3, 8, 8], new GraphBuilder(seed: 13).Normal(8 * 192));
        (OnnxModel Original, OnnxModel Pruned, List<RefitLayer> Layers, ChannelGroupSet Groups) Pruned() => PrunedDepthwiseBlock(5);
        var (original, separate, layers, _) = Pruned();
        var (_, recorded, recordedLayers, _) = Pruned();
        Assert.Contains(layers, l => l.Pruned.GetInt("group", 1) > 1);
        var ranked = DepthwiseBlock(5);
        var groups = Harness.Analyze(ranked);
        using var recording = new TargetRecording(8);
        CalibratedRanking.Measure(ranked, groups, groups.Prunable, CalibrationData.FromTensors([calibration]), seed: 0, recording: recording);

        var passes = new List<string>();
        Reconstruction.Run(original, separate, layers, [calibration]);
        var report = Reconstruction.Run(original, recorded, recordedLayers, [calibration], new ReconstructionOptions { PassLog = passes.Add }, recording);
        Assert.Equal(layers.Count, report.FittedCount + report.SkippedLayers.Count());
        Assert.Contains(passes, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^targets of (\d+) of \1 layers from the ranking's pass"));
        Assert.DoesNotContain(passes, l => l.StartsWith("pass over the original model"));
        Assert.True(ModelOps.RelativeMaxError(ModelOps.Run(separate, calibration), ModelOps.Run(recorded, calibration)) < 1e-5);
    }

    /// <summary>Hard-swish as opset-9 exports spell it: x·Clip(x + 3, 0, 6)/6.</summary>
    internal static string HardSwish(GraphBuilder b, string x) =>
        b.Node("Div", [b.Node("Mul", [x, b.Node("Clip", [b.Node("Add", [x, b.Init("three", [], [3f])]), b.Init("lo", [], [0f]), b.Init("hi", [], [6f])])]),
            b.Init("six", [], [6f])]);

    /// <summary>
    /// x → A → hswish → B (1×1) → D (depthwise 3×3 over B's channels) → hswish → E: A's group and B's (with D tied to it)
    /// lose channels, B is re-fitted from A's kept channels only approximately, and D reads B's channels one by one.
    /// </summary>
    internal static OnnxModel DepthwiseBlock(int seed)
    {
        var b = new GraphBuilder(seed: seed);
        string h = b.Input("x", -1, 3, 8, 8);
        h = HardSwish(b, b.Conv(h, 3, 8));
        h = b.Conv(h, 8, 8, k: 1);
        h = HardSwish(b, b.Conv(h, 8, 8, group: 8));
        h = b.Conv(h, 8, 4);
        b.Output(h, -1, 4, 8, 8);
        return b.Model();
    }

    /// <summary><see cref="DepthwiseBlock"/> with both of its 8-wide groups pruned to 5 channels, and the layers to re-fit.</summary>
    private static (OnnxModel Original, OnnxModel Pruned, List<RefitLayer> Layers, ChannelGroupSet Groups) PrunedDepthwiseBlock(int seed, bool depthwise = true)
    {
        var original = DepthwiseBlock(seed);
        var pruned = original.Clone();
        var groups = Harness.Analyze(pruned);
        var keep = groups.Prunable.Where(g => g.Width == 8).ToDictionary(g => g.Id, g => new[] { 0, 2, 3, 5, 6 });
        Assert.Equal(2, keep.Count);
        var originalOf = pruned.Graph.Nodes.Zip(original.Graph.Nodes).ToDictionary(p => p.First, p => p.Second);
        ChannelPruner.Apply(pruned, groups, keep, RewriteOptions.Plain);
        return (original, pruned, RefitLayer.FromGroups(groups, keep, pruned.Graph, n => originalOf.GetValueOrDefault(n), depthwise), groups);
    }

    [Fact]
    public void Depthwise_convs_before_a_hard_gate_are_fitted_plainly_unless_asked()
    {
        var calibration = ModelOps.Floats("x", [64, 3, 8, 8], new GraphBuilder(seed: 23).Normal(64 * 192));
        (string Line, bool Aware) DepthwiseFit(ReconstructionOptions options)
        {
            var (original, pruned, layers, _) = PrunedDepthwiseBlock(5);
            string dw = pruned.Graph.Nodes.Single(n => n.OpType == "Conv" && n.GetInt("group", 1) > 1).Id;
            var lines = new List<string>();
            var report = Reconstruction.Run(original, pruned, layers, [calibration], options with { Log = lines.Add });
            Assert.True(report.Layers.Single(l => l.Name == dw).Fitted, "the depthwise conv was not fitted");
            string line = lines.Single(l => l.StartsWith(dw + ":"));
            return (line, line.Contains("hard-gate-aware"));
        }
        Assert.False(DepthwiseFit(new ReconstructionOptions()).Aware);
        Assert.True(DepthwiseFit(new ReconstructionOptions { GateAwareSmallGroups = true }).Aware);
    }

    [Fact]
    public void Depthwise_convs_of_pruned_groups_are_refitted_and_take_back_error()
    {
        var calibration = ModelOps.Floats("x", [64, 3, 8, 8], new GraphBuilder(seed: 21).Normal(64 * 192));
        var test = ModelOps.Floats("x", [32, 3, 8, 8], new GraphBuilder(seed: 22).Normal(32 * 192));
        double ErrorWith(bool depthwise)
        {
            var (original, pruned, layers, _) = PrunedDepthwiseBlock(4, depthwise);
            var dw = pruned.Graph.Nodes.Single(n => n.OpType == "Conv" && n.GetInt("group", 1) > 1);
            Assert.Equal(depthwise, layers.Any(l => l.Pruned.Equals(dw)));
            var report = Reconstruction.Run(original, pruned, layers, [calibration], new ReconstructionOptions { Ridge = 1e-6 });
            Assert.Equal(layers.Count, report.FittedCount + report.SkippedLayers.Count());
            if (depthwise) Assert.True(report.Layers.Single(l => l.Name == dw.Id).Fitted, "the depthwise conv was not fitted");
            var a = ModelOps.Run(original, test);
            var p = ModelOps.Run(pruned, test);
            double e = 0, t = 0;
            for (int i = 0; i < a.Length; i++) { e += (a[i] - p[i]) * (a[i] - p[i]); t += a[i] * a[i]; }
            return Math.Sqrt(e / t);
        }
        double without = ErrorWith(false), with = ErrorWith(true);
        Assert.True(with < without, $"output error {without:0.0000} without the depthwise re-fit, {with:0.0000} with it");
    }
}
