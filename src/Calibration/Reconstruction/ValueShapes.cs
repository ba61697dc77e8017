using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// Per-sample shapes of every value a model computes, and from them how much memory a run needs per
/// sample: what sets the batch size of a calibration pass, ONNX Runtime's own intermediates included.
/// </summary>
internal static class ValueShapes
{
    /// <summary>Shapes (leading dim 1) of the model's inputs and of every tensor its nodes compute, from one calibration sample.</summary>
    public static Dictionary<string, long[]> Probe(OnnxModel model, CalibrationData calibration, Provider provider) =>
        Probe(model, calibration, provider, out _);

    /// <summary>
    /// Also gives each value's element type as ONNX Runtime computed it: a sub-model that feeds or returns a value in
    /// float32 memory must convert a float16/bfloat16/float64 one at its boundary (<see cref="SubModel"/>). Inferred by
    /// ONNX Runtime where it can (<see cref="InferredShapes"/>); the rest, and the model's own outputs as a check of the
    /// inference, from one run on one sample.
    /// </summary>
    public static Dictionary<string, long[]> Probe(OnnxModel model, CalibrationData calibration, Provider provider,
        out Dictionary<string, TensorElementType> types)
    {
        var found = new Dictionary<string, TensorElementType>(StringComparer.Ordinal);
        types = found;
        var one = calibration.Slice(0, 1);
        var produced = model.Graph.Nodes.SelectMany(n => n.Outputs).Where(o => o.Length > 0).Distinct().ToList();
        var checks = model.Graph.OutputNames.Where(o => model.Graph.Producer(o) is not null).ToList();
        var shapes = produced.Count == 0 ? new Dictionary<string, long[]>(StringComparer.Ordinal)
            : InferredShapes.Complete(model, produced, checks, one.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal),
                values => values.Count == 0 ? new(StringComparer.Ordinal) : RunShapes(model, values, one, provider, found), found, out _);
        foreach (var t in one)
        {
            shapes[t.Name] = t.Shape;
            types[t.Name] = t.ElementType;
        }
        return shapes;
    }

    /// <summary>Shapes of <paramref name="values"/> from one run: basic optimisation keeps every value, and the outputs' shapes are read without copying their data.</summary>
    private static Dictionary<string, long[]> RunShapes(OnnxModel model, IReadOnlyCollection<string> values, IReadOnlyList<NamedTensor> one, Provider provider,
        Dictionary<string, TensorElementType> types)
    {
        using var runner = new ModelRunner(SubModel.Build(model, values).Bytes, provider, optimize: false, spinning: false);
        return runner.OutputShapes(one, types);
    }

    public static long Elements(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of one sample of <paramref name="value"/> (0 when its shape is unknown).</summary>
    public static long Bytes(IReadOnlyDictionary<string, long[]> shapes, string value) =>
        shapes.TryGetValue(value, out var s) ? Elements(s) * sizeof(float) : 0;

    /// <summary>
    /// Most bytes per sample that running <paramref name="nodes"/> (in order) keeps alive at once in values it
    /// computes itself, not counting <paramref name="held"/> (fed or returned in the caller's memory): each value
    /// lives from its node until its last reader. ONNX Runtime plans its memory the same way, so this is what it
    /// allocates per sample, give or take kernel workspace.
    /// </summary>
    public static long IntermediateBytes(IReadOnlyList<Node> nodes, IReadOnlySet<string> held, IReadOnlyDictionary<string, long[]> shapes)
    {
        var readers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in nodes)
            foreach (var name in node.ReadNames().Distinct()) readers[name] = readers.GetValueOrDefault(name) + 1;
        var produced = new HashSet<string>(nodes.SelectMany(n => n.Outputs), StringComparer.Ordinal);
        long live = 0, peak = 0;
        foreach (var node in nodes)
        {
            foreach (var o in node.Outputs)
                if (o.Length > 0 && !held.Contains(o)) live += Bytes(shapes, o);
            peak = Math.Max(peak, live);
            foreach (var name in node.ReadNames().Distinct())
                if (--readers[name] == 0 && produced.Contains(name) && !held.Contains(name)) live -= Bytes(shapes, name);
            foreach (var o in node.Outputs)
                if (o.Length > 0 && !held.Contains(o) && !readers.ContainsKey(o)) live -= Bytes(shapes, o);
        }
        return peak;
    }
}
