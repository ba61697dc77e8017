using OnnxSlim.Calibration;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

public sealed class ChannelMomentsTests
{
    // x [5,3,4,4] → Relu → r; x → Conv(1×1, 3→2) → c: two values with different channel counts.
    private static (GraphIO.OnnxModel Model, float[] X) Model()
    {
        var m = new GraphBuilder(seed: 7);
        float[] x = m.Normal(5 * 3 * 16);
        var model = m.WithInput("x", -1, 3, 4, 4)
            .WithInitializer("w", [2, 3, 1, 1], m.Normal(6))
            .WithNode("Relu", "relu", ["x"], ["r"])
            .WithNode("Conv", "conv", ["r", "w"], ["c"])
            .WithOutput("c")
            .Model();
        return (model, x);
    }

    /// <summary>E[v·vᵀ] over every (sample, position) of channel axis 1, in float64.</summary>
    internal static double[] Direct(float[] values, int samples, int channels, int positions)
    {
        var g = new double[channels * channels];
        for (int s = 0; s < samples; s++)
            for (int p = 0; p < positions; p++)
                for (int i = 0; i < channels; i++)
                    for (int j = 0; j < channels; j++)
                        g[i * channels + j] += (double)values[(s * channels + i) * positions + p] * values[(s * channels + j) * positions + p];
        return [.. g.Select(v => v / (samples * positions))];
    }

    [Fact]
    public void Moments_over_every_position_match_the_direct_sums()
    {
        var (model, x) = Model();
        var input = ModelOps.Floats("x", [5, 3, 4, 4], x);
        // A tiny batch budget forces one sample per run, so batches are stitched together.
        ChannelMoments.Request r = new("r"), c = new("c");
        var moments = ChannelMoments.Compute(model, [r, c], [input], maxObservations: 1000, batchBytes: 1);
        var relu = x.Select(v => Math.Max(v, 0f)).ToArray();
        var expected = Direct(relu, 5, 3, 16);
        Assert.Equal(9, moments[r].Length);
        for (int i = 0; i < 9; i++) Assert.Equal(expected[i], moments[r][i], 5);
        var conv = ModelOps.Run(model, input);
        var expectedConv = Direct(conv, 5, 2, 16);
        for (int i = 0; i < 4; i++) Assert.Equal(expectedConv[i], moments[c][i], 4);
    }

    [Fact]
    public void Batches_taken_beside_the_next_run_give_the_moments_and_recording_of_one_thread()
    {
        // x → A → Relu → B → Relu → C: B and C read prunable groups, so their outputs are recorded as targets.
        var b = new GraphBuilder(seed: 21);
        string h = b.Input("x", -1, 3, 8, 8);
        h = b.Relu(b.Conv(h, 3, 6));
        h = b.Relu(b.Conv(h, 6, 6));
        h = b.Conv(h, 6, 4);
        b.Output(h, -1, 4, 8, 8);
        var model = b.Model();
        var calibration = CalibrationData.FromTensors([ModelOps.Floats("x", [7, 3, 8, 8], new GraphBuilder(seed: 22).Normal(7 * 192))]);
        var groups = Harness.Analyze(model);
        var readers = model.Graph.Nodes.Where(n => n.OpType == "Conv").Skip(1).ToList();
        var requests = readers.Select(n => new ChannelMoments.Request(n.Input(0), n, model.Graph.ResolveWeight(n.Input(1))!.Tensor.Dims)).ToList();
        (IReadOnlyDictionary<ChannelMoments.Request, double[]> Moments, float[][] Recorded, long Bytes) Run(bool alongside)
        {
            using var recording = new TargetRecording(7);
            recording.AddCandidates(model.Graph, groups.Prunable);
            // A tiny batch budget: one sample per run, seven batches.
            var moments = ChannelMoments.Compute(model, requests, calibration, 1000, 0, 1, Runtime.Provider.Cpu, recording, alongside);
            var recorded = readers.Select(n =>
            {
                var rows = new float[100 * 6];
                recording.Read(n.Outputs[0], n.Id, skip: false, 0, 100, rows);
                return rows;
            }).ToArray();
            return (moments, recorded, recording.Bytes);
        }
        var alone = Run(alongside: false);
        var beside = Run(alongside: true);
        Assert.True(alone.Bytes > 0);
        Assert.Equal(alone.Bytes, beside.Bytes);
        foreach (var r in requests) Assert.Equal(alone.Moments[r], beside.Moments[r]);
        for (int i = 0; i < readers.Count; i++) Assert.Equal(alone.Recorded[i], beside.Recorded[i]);
    }

    [Fact]
    public void Moments_are_the_same_bits_however_the_images_are_batched()
    {
        // 40 images of 64 positions each: one image a batch is 64 rows per batch, all at once 2,560. The rows are gathered
        // into flushes of 256 whatever the batches (once a product call per batch, each its own flush).
        var m = new GraphBuilder(seed: 11);
        float[] x = m.Normal(40 * 16 * 64);
        var model = m.WithInput("x", -1, 16, 8, 8).WithNode("Relu", "relu", ["x"], ["r"]).WithOutput("r").Model();
        var input = ModelOps.Floats("x", [40, 16, 8, 8], x);
        ChannelMoments.Request r = new("r");
        var oneByOne = ChannelMoments.Compute(model, [r], [input], maxObservations: 4000, batchBytes: 1)[r];
        var together = ChannelMoments.Compute(model, [r], [input], maxObservations: 4000, batchBytes: 1L << 30)[r];
        Assert.Equal(together, oneByOne);
    }

    [Fact]
    public void Moments_that_overflow_are_refused_naming_the_value()
    {
        // Finite samples far off the model's scale (1e25 here) pass every value check, but their products overflow the
        // float32 blocks the Grams are summed from: the ranking then failed as an internal error, not as bad data.
        var (model, x) = Model();
        var input = ModelOps.Floats("x", [5, 3, 4, 4], [.. x.Select(v => v * 1e25f)]);
        ChannelMoments.Request r = new("r");
        var e = Assert.Throws<ArgumentException>(() => ChannelMoments.Compute(model, [r], [input], maxObservations: 1000));
        Assert.Contains("'r'", e.Message);
        Assert.Contains("scaled as the model expects", e.Message);
    }

    [Fact]
    public void Sampled_moments_are_seeded_and_symmetric()
    {
        var (model, x) = Model();
        var input = ModelOps.Floats("x", [5, 3, 4, 4], x);
        ChannelMoments.Request r = new("r");
        var a = ChannelMoments.Compute(model, [r], [input], maxObservations: 40, seed: 1)[r];
        var b = ChannelMoments.Compute(model, [r], [input], maxObservations: 40, seed: 1)[r];
        var c = ChannelMoments.Compute(model, [r], [input], maxObservations: 40, seed: 2)[r];
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) Assert.Equal(a[i * 3 + j], a[j * 3 + i]);
        Assert.Throws<ArgumentException>(() => ChannelMoments.Compute(model, [r], [input], maxObservations: 0));
    }

    [Fact]
    public void Patch_moments_match_the_sums_over_padded_strided_patches()
    {
        // A 3×3 conv with stride 2 and pads 1 reading r: every (sample, output position) is one patch of 3·9 features.
        var m = new GraphBuilder(seed: 9);
        float[] x = m.Normal(2 * 3 * 25);
        var model = m.WithInput("x", -1, 3, 5, 5)
            .WithInitializer("w", [4, 3, 3, 3], m.Normal(108))
            .WithNode("Relu", "relu", ["x"], ["r"])
            .WithNode("Conv", "conv", ["r", "w"], ["c"], ("pads", new long[] { 1, 1, 1, 1 }), ("strides", new long[] { 2, 2 }))
            .WithOutput("c")
            .Model();
        var conv = model.Graph.Nodes.Single(n => n.OpType == "Conv");
        ChannelMoments.Request patches = new("r", conv, [4, 3, 3, 3]);
        var g = ChannelMoments.Compute(model, [patches], [ModelOps.Floats("x", [2, 3, 5, 5], x)], maxObservations: 1000)[patches];

        var relu = x.Select(v => Math.Max(v, 0f)).ToArray();
        const int f = 27, outSide = 3;
        var expected = new double[f * f];
        var patch = new double[f];
        for (int s = 0; s < 2; s++)
            for (int oh = 0; oh < outSide; oh++)
                for (int ow = 0; ow < outSide; ow++)
                {
                    for (int ch = 0; ch < 3; ch++)
                        for (int kh = 0; kh < 3; kh++)
                            for (int kw = 0; kw < 3; kw++)
                            {
                                int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
                                patch[ch * 9 + kh * 3 + kw] = ih is >= 0 and < 5 && iw is >= 0 and < 5 ? relu[((s * 3 + ch) * 5 + ih) * 5 + iw] : 0;
                            }
                    for (int i = 0; i < f; i++)
                        for (int j = 0; j < f; j++) expected[i * f + j] += patch[i] * patch[j] / (2 * outSide * outSide);
                }
        Assert.Equal(f * f, g.Length);
        for (int i = 0; i < f * f; i++) Assert.Equal(expected[i], g[i], 5);
        // A grouped conv or a weight that does not read every channel is refused, not measured wrongly.
        Assert.Throws<ArgumentException>(() => ChannelMoments.Compute(model, [new ChannelMoments.Request("r", conv, [4, 2, 3, 3])], [ModelOps.Floats("x", [2, 3, 5, 5], x)]));
    }
}
