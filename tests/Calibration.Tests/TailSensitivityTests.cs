using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

/// <summary>The end-to-end check run on a model's tail only, from the original's values at a cut.</summary>
public sealed class TailSensitivityTests
{
    /// <summary>x → A (3→6, 3×3) → Relu → B (6→5, 1×1) → Relu → C (5→4, 1×1) → y, with <paramref name="skip"/> a 1×1 conv of x added to y.</summary>
    private static (OnnxModel Model, string A, string B) Model(bool skip, long batch = -1)
    {
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", batch, 3, 8, 8);
        string a = b.Conv(x, 3, 6);
        string h = b.Conv(b.Relu(a), 6, 5, k: 1);
        string y = b.Conv(b.Relu(h), 5, 4, k: 1);
        if (skip) y = b.Node("Add", [y, b.Conv(x, 3, 4, k: 1)]);
        b.Output(y, batch, 4, 8, 8);
        return (b.Model(), a, h);
    }

    /// <summary>
    /// Every group of <paramref name="model"/> ranked on 10 seeded samples, each to keep 3 channels, and what pruning each alone
    /// costs the whole model's outputs on the first 4 (the samples the tails are measured on too).
    /// </summary>
    private static (Dictionary<int, GroupSensitivity.Candidate> Candidates, Dictionary<int, double> Whole, IReadOnlyList<NamedTensor> Samples) Candidates(OnnxModel model)
    {
        var groups = Harness.Analyze(model);
        using var data = CalibrationData.FromTensors([ModelOps.Floats("x", [10, 3, 8, 8], new GraphBuilder(seed: 9).Normal(10 * 192))]);
        var readers = new Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>>();
        var ranking = CalibratedRanking.Measure(model, groups, groups.Prunable, data, seed: 0, readers: readers);
        var candidates = ranking.ToDictionary(r => r.Key, r => new GroupSensitivity.Candidate(readers[r.Key], r.Value.Keep(3)));
        var samples = data.Slice(0, 4);
        return (candidates, GroupSensitivity.Measure(model, candidates, samples), samples);
    }

    [Fact]
    public void The_tail_starts_at_the_earliest_value_and_needs_no_model_input()
    {
        var (model, a, h) = Model(skip: false);
        var tail = TailSensitivity.Find(model.Graph, [h, a], n => n.OpType == "Conv" ? 1 : 0);
        Assert.NotNull(tail);
        Assert.Equal([a], tail.Cut); // B's output is computed from A's: not a cut value
        Assert.Equal(2, tail.Macs); // B and C, not A
        Assert.DoesNotContain(model.Graph.Producer(a)!, tail.Nodes);

        // With a path from x to the output beside the cut, there is no tail.
        var (skipped, a2, _) = Model(skip: true);
        Assert.Null(TailSensitivity.Find(skipped.Graph, [a2], _ => 0));
        Assert.Null(TailSensitivity.Find(model.Graph, ["x"], _ => 0));
    }

    [Fact]
    public void Checking_the_tail_alone_measures_what_the_whole_model_measures()
    {
        var (model, a, h) = Model(skip: false);
        var (candidates, whole, samples) = Candidates(model);
        Assert.Equal(2, candidates.Count);
        var tail = TailSensitivity.Find(model.Graph, [a, h], _ => 0)!;
        var part = TailSensitivity.Measure(model, tail, candidates, samples);
        Assert.Equal(2, whole.Count);
        foreach (var (id, d) in whole)
        {
            Assert.True(d > 1e-4, $"group {id}: pruning to 3 channels costs the outputs {d}");
            Assert.True(Math.Abs(part[id] - d) <= 1e-4 * d, $"group {id}: tail {part[id]} vs whole model {d}");
        }
        // A tail that starts after a group's readers does not measure that group.
        var late = TailSensitivity.Find(model.Graph, [h], _ => 0)!;
        var onlyLate = TailSensitivity.Measure(model, late, candidates, samples);
        Assert.Single(onlyLate);
    }

    [Fact]
    public void A_model_with_a_fixed_batch_of_one_has_its_cut_computed_a_sample_at_a_time()
    {
        // Exports often fix the batch at 1; the cut's values were computed in one run of every sample, which ONNX Runtime
        // refused ("invalid dimensions for input"), failing a whole --calib run.
        var (model, a, h) = Model(skip: false, batch: 1);
        var (candidates, whole, samples) = Candidates(model);
        var part = TailSensitivity.Measure(model, TailSensitivity.Find(model.Graph, [a, h], _ => 0)!, candidates, samples);
        Assert.Equal(2, whole.Count);
        foreach (var (id, d) in whole) Assert.True(Math.Abs(part[id] - d) <= 1e-4 * d, $"group {id}: tail {part[id]} vs whole model {d}");
    }

    [Fact]
    public void Several_tails_from_one_run_of_the_original_measure_what_the_whole_model_measures()
    {
        var (model, a, h) = Model(skip: false);
        var (candidates, whole, samples) = Candidates(model);
        var early = TailSensitivity.Find(model.Graph, [a], _ => 0)!;
        var late = TailSensitivity.Find(model.Graph, [h], _ => 0)!;
        // Each group on its own tail: B's readers (C) lie in the tail from h, A's (B) only in the one from a.
        int lateGroup = TailSensitivity.Measure(model, late, candidates, samples).Keys.Single();
        int earlyGroup = candidates.Keys.Single(id => id != lateGroup);
        var parts = TailSensitivity.Measure(model,
            [(early, new Dictionary<int, GroupSensitivity.Candidate> { [earlyGroup] = candidates[earlyGroup] }),
             (late, new Dictionary<int, GroupSensitivity.Candidate> { [lateGroup] = candidates[lateGroup] })], samples);
        Assert.Equal(2, parts.Count);
        foreach (var (id, d) in whole)
            Assert.True(Math.Abs(parts[id] - d) <= 1e-4 * d, $"group {id}: its tail {parts[id]} vs whole model {d}");
    }
}
