using OnnxSlim.TestSupport;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>Data-free compensation: least-squares folds of removed filters and bias correction from BatchNorm statistics.</summary>
public sealed class CompensationTests
{
    private const int Batch = 8, Size = 12;

    /// <summary>Standard normal inputs [n, channels, Size, Size].</summary>
    private static NamedTensor Gaussian(int n, int channels, int seed)
    {
        var random = new Random(seed);
        var values = new float[n * channels * Size * Size];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)StandardNormal.Next(random);
        return new NamedTensor("x", TensorElementType.Float, [n, channels, Size, Size], values);
    }

    private static float[] Run(OnnxModel model, NamedTensor input)
    {
        using var runner = new ModelRunner(model.ToBytes(), Provider.Cpu, intraOpThreads: 1);
        return runner.Run([input])[0].AsFloats();
    }

    private static double MaxRelativeError(float[] expected, float[] actual) => Harness.RelativeError(expected, actual);

    private static float[] Floats(OnnxModel model, string name) => model.Graph.ResolveWeight(name)!.Tensor.ToFloats();

    private static void SetFloats(OnnxModel model, string name, float[] values)
    {
        var t = model.Graph.ResolveWeight(name)!.Tensor;
        t.SetFloats(t.Dims, values);
    }

    /// <summary>Row j of a [C_out, rest] weight := Σ coefficients·rows.</summary>
    private static void Combine(float[] w, int rowLength, int j, params (int Row, double Coefficient)[] terms)
    {
        for (int e = 0; e < rowLength; e++)
            w[j * rowLength + e] = (float)terms.Sum(t => t.Coefficient * w[t.Row * rowLength + e]);
    }

    /// <summary>x → Conv 3→6 (3×3, bias) → [Relu] → Conv 6→4 (1×1) → y.</summary>
    private static (OnnxModel Model, string Weight, string Bias) TwoConvs(bool relu)
    {
        var b = new GraphBuilder(seed: 3);
        var x = b.Input("x", -1, 3, Size, Size);
        var h = b.Conv(x, 3, 6);
        if (relu) h = b.Relu(h);
        b.Output(b.Conv(h, 6, 4, k: 1), -1, 4, Size, Size);
        var model = b.Model();
        var conv = model.Graph.Nodes.First(n => n.OpType == "Conv");
        return (model, conv.Inputs[1], conv.Inputs[2]);
    }

    private static (float[] Before, float[] Plain, float[] Compensated, RewriteResult Result) PruneBoth(OnnxModel model, Dictionary<int, int[]> keep, RewriteOptions options, NamedTensor input)
    {
        var before = Run(model, input);
        using var plain = model.Clone();
        ChannelPruner.Apply(plain, Harness.Analyze(plain), keep, RewriteOptions.Plain);
        using var compensated = model.Clone();
        var result = ChannelPruner.Apply(compensated, Harness.Analyze(compensated), keep, options);
        return (before, Run(plain, input), Run(compensated, input), result);
    }

    [Fact]
    public void Least_squares_fold_is_exact_for_any_combination_on_a_linear_path()
    {
        var (model, weight, bias) = TwoConvs(relu: false);
        using var _ = model;
        var w = Floats(model, weight);
        var c = Floats(model, bias);
        // Channels 0 and 4 are combinations of kept ones, with signed coefficients (nothing nonlinear follows).
        Combine(w, 27, 0, (1, 0.7), (2, -1.3));
        Combine(w, 27, 4, (3, -0.5), (5, 2.0), (1, 0.25));
        Combine(c, 1, 0, (1, 0.7), (2, -1.3));
        Combine(c, 1, 4, (3, -0.5), (5, 2.0), (1, 0.25));
        SetFloats(model, weight, w);
        SetFloats(model, bias, c);
        var keep = new Dictionary<int, int[]> { [0] = [1, 2, 3, 5] };
        var options = new RewriteOptions { Compensation = Compensation.LeastSquares, FoldTerms = 4, Ridge = 0 };
        var (before, plain, compensated, result) = PruneBoth(model, keep, options, Gaussian(2, 3, 1));
        Assert.Equal(2, result.Folded);
        Assert.Equal(0, result.Merged);
        Assert.True(MaxRelativeError(before, plain) > 0.1, "removing the channels should change the output");
        Assert.True(MaxRelativeError(before, compensated) < 1e-4, $"error {MaxRelativeError(before, compensated):G3}");
    }

    [Fact]
    public void One_term_fold_uses_the_best_matching_kept_filter()
    {
        var (model, weight, bias) = TwoConvs(relu: false);
        using var _ = model;
        var w = Floats(model, weight);
        var c = Floats(model, bias);
        Combine(w, 27, 3, (5, -1.7));
        Combine(c, 1, 3, (5, -1.7));
        SetFloats(model, weight, w);
        SetFloats(model, bias, c);
        var keep = new Dictionary<int, int[]> { [0] = [0, 1, 2, 4, 5] };
        var (before, _, compensated, result) = PruneBoth(model, keep, new RewriteOptions { Compensation = Compensation.LeastSquares }, Gaussian(2, 3, 2));
        Assert.Equal(1, result.Folded);
        Assert.True(MaxRelativeError(before, compensated) < 1e-4);
    }

    [Fact]
    public void Through_relu_only_non_negative_coefficients_are_folded()
    {
        var (model, weight, bias) = TwoConvs(relu: true);
        using var _ = model;
        var w = Floats(model, weight);
        var c = Floats(model, bias);
        // Channel 1 = −1 × channel 2: relu(−z) is not −relu(z), so it must not be folded through the ReLU.
        Combine(w, 27, 1, (2, -1.0));
        Combine(c, 1, 1, (2, -1.0));
        SetFloats(model, weight, w);
        SetFloats(model, bias, c);
        var keep = new Dictionary<int, int[]> { [0] = [0, 2, 3, 4, 5] };
        var options = new RewriteOptions { Compensation = Compensation.LeastSquares, FoldTerms = 2 };
        var (before, plain, compensated, result) = PruneBoth(model, keep, options, Gaussian(2, 3, 3));
        // Channel 2 (kept position 1) is the perfect signed match; the non-negative fit must leave its column alone.
        var consumer = model.Graph.Nodes.Last(n => n.OpType == "Conv");
        var original = Floats(model, consumer.Inputs[1]);
        using var pruned = model.Clone();
        ChannelPruner.Apply(pruned, Harness.Analyze(pruned), keep, options);
        var after = Floats(pruned, pruned.Graph.Nodes.Last(n => n.OpType == "Conv").Inputs[1]);
        for (int o = 0; o < 4; o++) Assert.Equal(original[o * 6 + 2], after[o * 5 + 1]);
        // Folding it anyway (signed coefficients through the ReLU) is worse than dropping the channel.
        using var signed = model.Clone();
        var forced = ChannelPruner.Apply(signed, Harness.Analyze(signed), keep, options with { SignedThroughNonlinearity = true, FoldTerms = 1 });
        Assert.Equal(1, forced.Folded);
        Assert.True(MaxRelativeError(before, Run(signed, Gaussian(2, 3, 3))) > MaxRelativeError(before, plain),
            "folding −1 × channel 2 through the ReLU should be worse than dropping channel 1");
    }

    [Fact]
    public void Through_batchnorm_and_relu_a_near_multiple_is_folded_where_the_exact_merge_refuses()
    {
        // conv → BN → ReLU → conv, channel 5 ≈ 1.6 × channel 2 (filter, and BN shift so that the BN outputs are proportional),
        // off by a relative 1e-3: not a proven multiple, but the least-squares fold gets it almost right.
        var b = new GraphBuilder(seed: 5);
        var x = b.Input("x", -1, 3, Size, Size);
        var h = b.Relu(b.BatchNorm(b.Conv(x, 3, 8, bias: false), 8));
        b.Output(b.Conv(h, 8, 4, k: 1), -1, 4, Size, Size);
        using var model = b.Model();
        var conv = model.Graph.Nodes.First(n => n.OpType == "Conv");
        var bn = model.Graph.Nodes.First(n => n.OpType == "BatchNormalization");
        var w = Floats(model, conv.Inputs[1]);
        float[] gamma = Floats(model, bn.Inputs[1]), beta = Floats(model, bn.Inputs[2]), mean = Floats(model, bn.Inputs[3]), variance = Floats(model, bn.Inputs[4]);
        var noise = new Random(9);
        for (int e = 0; e < 27; e++) w[5 * 27 + e] = (float)(1.6 * w[2 * 27 + e] * (1 + 1e-3 * (noise.NextDouble() - 0.5)));
        // Same normalisation for both channels, then BN(conv_5) = 1.6·BN(conv_2) needs γ₅ = γ₂, m₅ = 1.6·m₂, v₅ = 1.6²·v₂, β₅ = 1.6·β₂.
        gamma[5] = gamma[2]; mean[5] = 1.6f * mean[2]; variance[5] = 1.6f * 1.6f * variance[2]; beta[5] = 1.6f * beta[2];
        SetFloats(model, conv.Inputs[1], w);
        SetFloats(model, bn.Inputs[1], gamma);
        SetFloats(model, bn.Inputs[2], beta);
        SetFloats(model, bn.Inputs[3], mean);
        SetFloats(model, bn.Inputs[4], variance);
        var keep = new Dictionary<int, int[]> { [0] = [0, 1, 2, 3, 4, 6, 7] };
        var input = Gaussian(2, 3, 4);
        var (before, plain, compensated, result) = PruneBoth(model, keep, new RewriteOptions { Compensation = Compensation.LeastSquares }, input);
        Assert.Equal(0, result.Merged);
        Assert.Equal(1, result.Folded);
        double plainError = MaxRelativeError(before, plain), error = MaxRelativeError(before, compensated);
        Assert.True(plainError > 0.05, $"plain error {plainError:G3}");
        Assert.True(error < 0.01, $"folded error {error:G3} (plain {plainError:G3})");
        // The exact merge alone leaves it out.
        using var exact = model.Clone();
        Assert.Equal(0, ChannelPruner.Apply(exact, Harness.Analyze(exact), keep, new RewriteOptions { Compensation = Compensation.Exact }).Merged);
    }

    /// <summary>
    /// x → Conv 3→8 (1×1, no bias) → BN → ReLU → Conv 8→4 (1×1; "bias": with a bias, "nobias": without, "batchnorm":
    /// without, then a BN) → y, with BN statistics true for standard normal inputs.
    /// </summary>
    private static OnnxModel BatchNormReluConv(string consumerKind)
    {
        bool consumerBatchNorm = consumerKind == "batchnorm";
        var b = new GraphBuilder(seed: 7);
        var x = b.Input("x", -1, 3, Size, Size);
        var pre = b.Conv(x, 3, 8, k: 1, bias: false);
        var h = b.Relu(b.BatchNorm(pre, 8));
        var y = b.Conv(h, 8, 4, k: 1, bias: consumerKind == "bias");
        if (consumerBatchNorm) y = b.BatchNorm(y, 4);
        b.Output(y, -1, 4, Size, Size);
        var model = b.Model();
        // Make the first BatchNorm's running statistics the true ones for standard normal inputs (a 1×1 conv of
        // independent N(0,1) inputs is N(0, ‖w‖²)), so its output really is N(β, γ²).
        var conv = model.Graph.Nodes.First(n => n.OpType == "Conv");
        var bn = model.Graph.Nodes.First(n => n.OpType == "BatchNormalization");
        var w = Floats(model, conv.Inputs[1]);
        var variance = new float[8];
        for (int c = 0; c < 8; c++) variance[c] = (float)Enumerable.Range(0, 3).Sum(i => (double)w[c * 3 + i] * w[c * 3 + i]);
        SetFloats(model, bn.Inputs[3], new float[8]);
        SetFloats(model, bn.Inputs[4], variance);
        if (consumerBatchNorm)
        {
            // The consumer's BN: statistics of its input on Gaussian inputs, measured.
            var consumer = model.Graph.Nodes.Last(n => n.OpType == "Conv");
            var last = model.Graph.Nodes.Last(n => n.OpType == "BatchNormalization");
            using var probe = model.Clone();
            probe.Graph.Proto.Output.Clear();
            probe.Graph.Proto.Output.Add(new GraphIO.Proto.ValueInfoProto { Name = consumer.Outputs[0], Type = new GraphIO.Proto.TypeProto { TensorType = new GraphIO.Proto.TypeProto.Types.Tensor { ElemType = 1 } } });
            probe.Graph.Reindex();
            var values = Run(probe, Gaussian(64, 3, 100));
            var (m, v) = ChannelMoments(values, 4);
            SetFloats(model, last.Inputs[3], [.. m.Select(a => (float)a)]);
            SetFloats(model, last.Inputs[4], [.. v.Select(a => (float)a)]);
        }
        return model;
    }

    private static (double[] Mean, double[] Var) ChannelMoments(float[] values, int channels)
    {
        int per = values.Length / channels / (Size * Size);
        var mean = new double[channels];
        var var = new double[channels];
        for (int c = 0; c < channels; c++)
        {
            double s = 0, s2 = 0;
            int count = 0;
            for (int n = 0; n < per; n++)
                for (int p = 0; p < Size * Size; p++)
                {
                    double v = values[(n * channels + c) * Size * Size + p];
                    s += v;
                    s2 += v * v;
                    count++;
                }
            mean[c] = s / count;
            var[c] = s2 / count - mean[c] * mean[c];
        }
        return (mean, var);
    }

    [Theory]
    [InlineData("bias")]
    [InlineData("nobias")]
    [InlineData("batchnorm")]
    public void Bias_correction_moves_the_mean_output_back_to_the_original(string consumerKind)
    {
        using var model = BatchNormReluConv(consumerKind);
        int initializers = model.Graph.Proto.Initializer.Count;
        var keep = new Dictionary<int, int[]> { [0] = [0, 2, 3, 6] };
        var input = Gaussian(64, 3, 200);
        var (before, plain, corrected, result) = PruneBoth(model, keep, new RewriteOptions { BiasCorrection = true }, input);
        Assert.Equal(1, result.BiasCorrected);
        Assert.Empty(result.Notes);
        double[] target = ChannelMoments(before, 4).Mean, plainMean = ChannelMoments(plain, 4).Mean, correctedMean = ChannelMoments(corrected, 4).Mean;
        double plainShift = target.Zip(plainMean).Sum(p => Math.Abs(p.First - p.Second));
        double correctedShift = target.Zip(correctedMean).Sum(p => Math.Abs(p.First - p.Second));
        Assert.True(plainShift > 0.1, $"removing the channels shifts the mean by only {plainShift:G3}");
        Assert.True(correctedShift < 0.1 * plainShift, $"corrected shift {correctedShift:G3}, plain {plainShift:G3}");

        // Where a BatchNorm follows the consumer, the correction goes into its mean: no parameter is added; a
        // consumer without a bias and without a BatchNorm gets one.
        using var pruned = model.Clone();
        ChannelPruner.Apply(pruned, Harness.Analyze(pruned), keep, new RewriteOptions { BiasCorrection = true });
        var consumer = pruned.Graph.Nodes.Last(n => n.OpType == "Conv");
        Assert.Equal(consumerKind == "batchnorm" ? 2 : 3, consumer.Inputs.Count);
        Assert.Equal(initializers + (consumerKind == "nobias" ? 1 : 0), pruned.Graph.Proto.Initializer.Count);
    }

    [Fact]
    public void Bias_correction_with_least_squares_corrects_only_what_the_fold_left()
    {
        using var model = BatchNormReluConv("bias");
        var keep = new Dictionary<int, int[]> { [0] = [0, 2, 3, 6] };
        var input = Gaussian(64, 3, 300);
        var options = new RewriteOptions { Compensation = Compensation.LeastSquares, FoldTerms = 2, BiasCorrection = true };
        var (before, plain, corrected, result) = PruneBoth(model, keep, options, input);
        Assert.True(result.Folded > 0);
        double[] target = ChannelMoments(before, 4).Mean, plainMean = ChannelMoments(plain, 4).Mean, correctedMean = ChannelMoments(corrected, 4).Mean;
        double plainShift = target.Zip(plainMean).Sum(p => Math.Abs(p.First - p.Second));
        double correctedShift = target.Zip(correctedMean).Sum(p => Math.Abs(p.First - p.Second));
        Assert.True(correctedShift < 0.1 * plainShift, $"corrected shift {correctedShift:G3}, plain {plainShift:G3}");
    }

    [Fact]
    public void Variance_correction_restores_the_spread_normalised_by_the_following_batchnorm()
    {
        // x (8 independent N(0,1) channels) → Conv 1×1 diagonal → BN → ReLU → Conv 8→4 → BN → y: the channels
        // reaching the consumer are independent, as the estimate assumes. Plain pruning leaves the last BN
        // dividing a smaller spread by the old one; the corrected running variance matches the new spread.
        var b = new GraphBuilder(seed: 11);
        var x = b.Input("x", -1, 8, Size, Size);
        var diagonal = new float[64];
        for (int c = 0; c < 8; c++) diagonal[c * 9] = 0.5f + 0.2f * c;
        var h = b.Relu(b.BatchNorm(b.Node("Conv", [x, b.Init("w", [8, 8, 1, 1], diagonal)], ("kernel_shape", new long[] { 1, 1 })), 8));
        var consumer = b.Node("Conv", [h, b.Init("w", [4, 8, 1, 1])], ("kernel_shape", new long[] { 1, 1 }));
        b.Output(b.BatchNorm(consumer, 4), -1, 4, Size, Size);
        using var model = b.Model();
        var bns = model.Graph.Nodes.Where(n => n.OpType == "BatchNormalization").ToList();
        SetFloats(model, bns[0].Inputs[3], new float[8]);
        SetFloats(model, bns[0].Inputs[4], [.. Enumerable.Range(0, 8).Select(c => diagonal[c * 9] * diagonal[c * 9])]);
        using (var probe = model.Clone())
        {
            probe.Graph.Proto.Output.Clear();
            probe.Graph.Proto.Output.Add(new GraphIO.Proto.ValueInfoProto { Name = consumer, Type = new GraphIO.Proto.TypeProto { TensorType = new GraphIO.Proto.TypeProto.Types.Tensor { ElemType = 1 } } });
            probe.Graph.Reindex();
            var (m, v) = ChannelMoments(Run(probe, Gaussian(64, 8, 500)), 4);
            SetFloats(model, bns[1].Inputs[3], [.. m.Select(a => (float)a)]);
            SetFloats(model, bns[1].Inputs[4], [.. v.Select(a => (float)a)]);
        }
        var keep = new Dictionary<int, int[]> { [0] = [1, 4, 5] };
        var input = Gaussian(64, 8, 600);
        var (before, plain, corrected, _) = PruneBoth(model, keep, new RewriteOptions { BiasCorrection = true, VarianceCorrection = true }, input);
        using var meanOnly = model.Clone();
        ChannelPruner.Apply(meanOnly, Harness.Analyze(meanOnly), keep, new RewriteOptions { BiasCorrection = true });
        double Error(float[] values) => ChannelMoments(values, 4).Var.Zip(ChannelMoments(before, 4).Var).Sum(p => Math.Abs(Math.Log(p.First / p.Second)));
        double plainError = Error(Run(meanOnly, input)), correctedError = Error(corrected);
        Assert.True(plainError > 0.5, $"pruning should shrink the spread (log error {plainError:G3})");
        Assert.True(correctedError < 0.25 * plainError, $"variance log error {correctedError:G3}, without the correction {plainError:G3}");
    }

    [Fact]
    public void Without_batchnorm_statistics_bias_correction_is_skipped_and_said()
    {
        var (model, _, _) = TwoConvs(relu: true);
        using var _m = model;
        var before = Harness.Bytes(model);
        var result = ChannelPruner.Apply(model, Harness.Analyze(model), new Dictionary<int, int[]> { [0] = [0, 2, 4] }, new RewriteOptions { BiasCorrection = true });
        Assert.Equal(0, result.BiasCorrected);
        Assert.Contains(result.Notes, n => n.Contains("bias correction skipped"));
        using var plain = OnnxModel.FromBytes(before);
        ChannelPruner.Apply(plain, Harness.Analyze(plain), new Dictionary<int, int[]> { [0] = [0, 2, 4] });
        Assert.Equal(plain.ToBytes(), model.ToBytes());
    }

    [Fact]
    public void Options_default_to_plain_slicing_and_merge_maps_to_compensation()
    {
        var options = new RewriteOptions();
        Assert.Equal(Compensation.None, options.Compensation);
        Assert.False(options.BiasCorrection);
        Assert.False(options.Merge);
        Assert.Equal(Compensation.Exact, new RewriteOptions { Merge = true }.Compensation);
        Assert.Equal(Compensation.None, new RewriteOptions { Compensation = Compensation.LeastSquares, Merge = false }.Compensation);
        Assert.Equal(Compensation.LeastSquares, new RewriteOptions { Compensation = Compensation.LeastSquares, Merge = true }.Compensation);
        Assert.True(RewriteOptions.DataFree.Merge);
        Assert.Equal(Compensation.LeastSquares, RewriteOptions.DataFree.Compensation);
        Assert.True(RewriteOptions.DataFree.BiasCorrection);
        Assert.Equal(RewriteOptions.Plain, new RewriteOptions());
    }

    [Theory]
    [InlineData("residual")]
    [InlineData("batchnorm")]
    [InlineData("depthwise")]
    [InlineData("densenet")]
    [InlineData("concat")]
    public void Data_free_compensation_is_deterministic_and_runs(string pattern)
    {
        byte[] Prune()
        {
            using var model = Patterns.Build(pattern).Model();
            var groups = Harness.Analyze(model);
            var result = ChannelPruner.Apply(model, groups, Harness.RandomKeep(groups, 0.5, new Random(3)), RewriteOptions.DataFree);
            Assert.True(result.Removed > 0);
            Assert.All(Harness.Run(model.ToBytes()), o => Assert.All(o.AsFloats(), v => Assert.True(float.IsFinite(v))));
            return model.ToBytes();
        }
        Assert.Equal(Prune(), Prune());
    }

    [Theory]
    [MemberData(nameof(PatternTests.Names), MemberType = typeof(PatternTests))]
    public void Data_free_compensation_keeps_removed_multiples_exact(string name)
    {
        // The exact merge comes first: with least squares and bias correction on top, merged channels stay exact.
        using var model = Patterns.Build(name).Model();
        var groups = Harness.Analyze(model);
        var keep = Harness.RandomKeep(groups, 0.6, new Random(name.Length));
        Assert.Equal(0, RedundancyInjector.MakeMultiples(groups, keep, new Random(5)));
        var before = Harness.Run(model.ToBytes());
        var result = ChannelPruner.Apply(model, groups, keep, RewriteOptions.DataFree);
        Assert.Equal(result.Removed, result.Merged);
        Assert.Equal(0, result.Folded);
        Harness.AssertSameOutputs(before, Harness.Run(model.ToBytes()), name == "fp16_cast" ? 1e-3 : 1e-4);
    }
}
