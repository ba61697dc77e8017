using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Runtime.Tests;

public sealed class BatchedRunTests
{
    private static NamedTensor T(string name, long[] shape, float[] values) => new(name, TensorElementType.Float, shape, values);

    [Fact]
    public void Batches_run_side_by_side_come_in_order_and_stack_to_the_whole_run()
    {
        using var runner = new ModelRunner(File.ReadAllBytes(Fixtures.BnResnet), intraOpThreads: 1, spinning: false);
        var inputs = InputGenerator.Generate(runner.Inputs, InputShapes.Resolve(runner.Inputs, [], batch: 10), seed: 3);
        var whole = runner.Run(inputs)[0];
        var seen = new List<(long, long)>();
        var values = new float[whole.Data.Length];
        int perSample = values.Length / 10;
        runner.ForEachBatch(inputs, 3, null, (first, count, part) =>
        {
            seen.Add((first, count));
            Assert.Equal([count, .. whole.Shape[1..]], part[0].Shape);
            part[0].AsFloats().CopyTo(values, first * perSample);
            return true;
        }, workers: 2);
        Assert.Equal([(0L, 3L), (3L, 3L), (6L, 3L), (9L, 1L)], seen);
        var same = OutputComparison.Compare([whole], [whole with { Data = values }]);
        Assert.True(same.MaxAbsError < 1e-4, $"max abs error {same.MaxAbsError}");
        var stacked = runner.RunInBatches(inputs, 4)[0];
        Assert.Equal(whole.Shape, stacked.Shape);
        Assert.True(OutputComparison.Compare([whole], [stacked]).MaxAbsError < 1e-4);

        // Stopping early runs nothing more.
        int calls = 0;
        runner.ForEachBatch(inputs, 3, null, (_, _, _) => ++calls < 2, workers: 1);
        Assert.Equal(2, calls);
    }

    [Fact]
    public void A_run_writes_its_outputs_into_the_arrays_it_is_given_back_when_they_fit()
    {
        var b = new GraphBuilder(seed: 4);
        string x = b.Input("x", 2, 3, 4, 4);
        string w = b.Init("small", [2, 3, 1, 1]);
        b.Output(b.Conv(x, 3, 2, k: 1, bias: false, weight: w), 2, 2, 4, 4);
        using var model = b.Model();
        using var runner = new ModelRunner(model, replaceable: new HashSet<string> { w });
        var inputs = new[] { ModelOps.Floats("x", [2, 3, 4, 4], b.Normal(96)) };
        var weights = new Dictionary<string, float[]> { [w] = b.Normal(6) };
        var first = runner.Run(inputs, weights);
        var expected = first[0].AsFloats().ToArray();
        var zeros = runner.Run(inputs, new Dictionary<string, float[]> { [w] = new float[6] });
        var again = runner.Run(inputs, weights, reuse: zeros);
        Assert.Same(zeros[0].Data, again[0].Data);
        Assert.Equal(expected, again[0].AsFloats());
        // An array of another size is left alone.
        var small = new[] { T(first[0].Name, [1], [7f]) };
        var fresh = runner.Run(inputs, weights, reuse: small);
        Assert.NotSame(small[0].Data, fresh[0].Data);
        Assert.Equal(7f, small[0].AsFloats()[0]);
        Assert.Equal(expected, fresh[0].AsFloats());
    }

    [Fact]
    public void A_comparison_batch_by_batch_gives_the_figures_of_the_stacked_outputs()
    {
        var rng = new Random(7);
        float[] R(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() * 2 - 1)];
        // 5 samples: a classifier's [5, 4], a map whose other axes differ, an empty value, and one the candidate lacks.
        var reference = new[] { T("logits", [5, 4], R(20)), T("map", [5, 2, 3], R(30)), T("empty", [5, 0], []), T("gone", [5, 1], R(5)) };
        var logits = R(20);
        var map = R(40);
        var candidate = new[] { T("logits", [5, 4], logits), T("map", [5, 2, 4], map), T("empty", [5, 0], []) };
        var stacked = OutputComparison.Compare(reference, candidate);

        var batched = new BatchedComparison(reference, 5);
        foreach (var (first, count) in new[] { (0L, 2L), (2L, 2L), (4L, 1L) })
        {
            NamedTensor Rows(NamedTensor t) => t with { Shape = [count, .. t.Shape[1..]], Data = t.AsFloats()[(int)(first * (t.Data.Length / 5))..(int)((first + count) * (t.Data.Length / 5))] };
            Assert.True(batched.Add(first, count, [.. candidate.Select(Rows)]));
        }
        var result = batched.Result();
        Assert.Equal(stacked.Cosine, result.Cosine);
        Assert.Equal(stacked.MaxAbsError, result.MaxAbsError);
        Assert.Equal(stacked.MaxRelError, result.MaxRelError);
        Assert.Equal(stacked.Top1Agreement, result.Top1Agreement);
        Assert.Equal(1, result.Compared);
        Assert.Equal(stacked.NotCompared, result.NotCompared);
        Assert.Equal(["'map' ([5x2x3] vs [5x2x4])", "'empty' (empty in both)", "'gone' (missing)"], result.NotCompared);

        // A value whose first axis is not the batch cannot be compared batch by batch; batches must follow each other.
        var notBatchMajor = new BatchedComparison(reference, 5);
        Assert.False(notBatchMajor.Add(0, 2, [T("logits", [1, 4], R(4))]));
        var inOrder = new BatchedComparison(reference, 5);
        Assert.Throws<ArgumentException>(() => inOrder.Add(2, 2, [.. candidate]));
        Assert.Throws<InvalidOperationException>(() => inOrder.Result());
    }
}
