using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Runtime.Tests;

public sealed class InferredShapesTests
{
    /// <summary>Convs on a dynamic input, then a data-dependent part (NonZero's positions, as a detector's NMS).</summary>
    private static (GraphIO.OnnxModel Model, string[] Convs, string Positions) Detector()
    {
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", -1, 3, -1, -1);
        string c1 = b.Conv(x, 3, 8);
        string c2 = b.Conv(b.Relu(c1), 8, 4, k: 1, stride: 2);
        string positions = b.Node("NonZero", [b.Node("Greater", [c2, b.Init("zero", [1], [0f])])]);
        b.Output(b.Node("ReduceSum", [b.Node("Cast", [positions], ("to", 1L))], ("keepdims", 0L)));
        // A stale declaration, as an export at another size leaves: inference must not take it.
        b.Declare(c1, 1, 8, 99, 99);
        return (b.Model(), [c1, c2], positions);
    }

    [Fact]
    public void Inferred_shapes_are_a_runs_and_data_dependent_ones_are_left_out()
    {
        var (model, convs, positions) = Detector();
        using (model)
        {
            var inferred = InferredShapes.Read(model, [.. convs, positions], new Dictionary<string, long[]> { ["x"] = [2, 3, 16, 12] });
            Assert.Equal(new long[] { 2, 8, 16, 12 }, inferred[convs[0]].Shape);
            Assert.Equal(new long[] { 2, 4, 8, 6 }, inferred[convs[1]].Shape);
            Assert.Equal(TensorElementType.Float, inferred[convs[1]].Type);
            Assert.False(inferred.ContainsKey(positions));

            using var runner = new ModelRunner(model, extraOutputs: [.. convs, positions]);
            var ran = runner.OutputShapes(InputGenerator.Generate(runner.Inputs, new Dictionary<string, long[]> { ["x"] = [2, 3, 16, 12] }, seed: 1));
            Assert.All(convs, c => Assert.Equal(ran[c], inferred[c].Shape));
            Assert.True(InferredShapes.Agree(inferred, ran));
        }
    }

    [Fact]
    public void The_probe_reads_what_inference_leaves_from_its_run()
    {
        var (model, convs, positions) = Detector();
        using (model)
        {
            (int Inferred, int Run) counts = default;
            var shapes = ShapeProbe.Run(model, [.. convs, positions], ["x=1,3,16,16"], thenRun: probed => counts = (probed.ValuesInferred, probed.ValuesRun));
            Assert.Equal((2, 1), counts);
            Assert.Equal(new long[] { 1, 8, 16, 16 }, shapes[convs[0]]);
            Assert.Equal(new long[] { 1, 4, 8, 8 }, shapes[convs[1]]);
            // NonZero's [rank, count]: the count is what the random input made positive.
            Assert.Equal(4, shapes[positions][0]);
            Assert.InRange(shapes[positions][1], 0, 4 * 8 * 8);
            Assert.Equal(new long[] { 1, 3, 16, 16 }, shapes["x"]);
        }
    }

    [Fact]
    public void A_run_that_contradicts_the_inference_makes_every_value_come_from_a_run()
    {
        var (model, convs, positions) = Detector();
        using (model)
        {
            string output = model.Graph.OutputNames[0];
            var input = new Dictionary<string, long[]> { ["x"] = [1, 3, 16, 16] };
            var calls = new List<string[]>();
            // Runs that report what inference says, but for the output, which ran to another shape the first time.
            Dictionary<string, long[]> Run(IReadOnlyList<string> exposed, bool contradict)
            {
                calls.Add([.. exposed]);
                var ran = InferredShapes.Read(model, exposed, input).ToDictionary(kv => kv.Key, kv => kv.Value.Shape);
                ran[positions] = [4, 7];
                if (contradict && calls.Count == 1) ran[output] = [2];
                return ran;
            }

            var types = new Dictionary<string, TensorElementType>();
            var agreed = InferredShapes.Complete(model, [.. convs, positions], [output], input, e => Run(e, contradict: false), types, out int inferred);
            Assert.Equal(2, inferred);
            Assert.Equal([positions, output], Assert.Single(calls));
            Assert.Equal(new long[] { 1, 8, 16, 16 }, agreed[convs[0]]);
            Assert.Equal(TensorElementType.Float, types[convs[0]]);

            calls.Clear();
            types["stale"] = TensorElementType.Float16;
            var ran = InferredShapes.Complete(model, [.. convs, positions], [output], input, e => Run(e, contradict: true), types, out inferred);
            Assert.Equal(0, inferred);
            Assert.Equal(2, calls.Count);
            Assert.Equal([.. convs, positions], calls[1]);
            Assert.Empty(types);
            Assert.Equal(new long[] { 4, 7 }, ran[positions]);
        }
    }

    [Fact]
    public void Agreement_fails_on_another_shape_or_type_and_ignores_what_was_not_inferred()
    {
        var inferred = new Dictionary<string, (long[] Shape, TensorElementType Type)> { ["a"] = ([1, 8, 4, 4], TensorElementType.Float) };
        Assert.True(InferredShapes.Agree(inferred, new Dictionary<string, long[]> { ["a"] = [1, 8, 4, 4], ["b"] = [3] }));
        Assert.False(InferredShapes.Agree(inferred, new Dictionary<string, long[]> { ["a"] = [1, 8, 4, 5] }));
        Assert.False(InferredShapes.Agree(inferred, new Dictionary<string, long[]> { ["a"] = [1, 8, 4, 4] },
            new Dictionary<string, TensorElementType> { ["a"] = TensorElementType.Float16 }));
    }

    [Fact]
    public void A_model_that_does_not_load_so_gives_no_inferred_shape()
    {
        var (model, convs, _) = Detector();
        using (model)
            // A map of rank 3 for a 2-D conv: ONNX Runtime refuses the model, and every value is left to a run.
            Assert.Empty(InferredShapes.Read(model, convs, new Dictionary<string, long[]> { ["x"] = [1, 3, 16] }));
    }
}
