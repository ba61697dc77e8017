using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Runtime;

/// <summary>
/// The shapes and element types ONNX Runtime infers for a model's values when it loads the model with concrete input
/// dims, without running it. A probe run keeps every value it exposes alive to its end (PP-OCRv4 det at 640²: 1.1 GB for
/// one page, faulted in afresh); inference costs a session's creation.
/// </summary>
public static class InferredShapes
{
    /// <summary>
    /// The values among <paramref name="values"/> whose every dim ONNX Runtime inferred (others are left out; none when the
    /// model does not load so).
    /// </summary>
    public static Dictionary<string, (long[] Shape, TensorElementType Type)> Read(OnnxModel model, IEnumerable<string> values,
        IReadOnlyDictionary<string, long[]> inputShapes)
    {
        ArgumentNullException.ThrowIfNull(model);
        var known = new Dictionary<string, (long[], TensorElementType)>(StringComparer.Ordinal);
        var wanted = values.ToHashSet(StringComparer.Ordinal);
        if (wanted.Count == 0) return known;
        InferenceSession session;
        try
        {
            session = SessionFactory.Create(model.ToBytesForShapeInference(wanted, inputShapes), Provider.Cpu, intraOpThreads: 1, optimize: false, spinning: false);
        }
        catch (RuntimeUnavailableException)
        {
            // Declared without its large weights, or with these input dims, the model may not load where it runs: a probe's run says.
            return known;
        }
        using var _ = session;
        foreach (var (name, meta) in session.OutputMetadata)
        {
            if (!wanted.Contains(name) || !meta.IsTensor || meta.Dimensions.Any(d => d < 0)
                || meta.SymbolicDimensions.Any(s => !string.IsNullOrEmpty(s))) continue;
            known[name] = ([.. meta.Dimensions.Select(d => (long)d)], meta.ElementDataType);
        }
        return known;
    }

    /// <summary>
    /// The shapes of <paramref name="values"/> (values nodes compute): those ONNX Runtime infers (<see cref="Read"/>), the rest
    /// from one call of <paramref name="run"/>, which is handed them with <paramref name="checks"/> (the model's own outputs)
    /// whose run must agree with the inference; where it does not, every value comes from a second call. <paramref name="run"/>
    /// exposes what it is handed, runs, and returns the shapes it ran to, filling <paramref name="types"/> when given.
    /// </summary>
    /// <param name="inferredCount">How many of <paramref name="values"/> were taken from the inference.</param>
    public static Dictionary<string, long[]> Complete(OnnxModel model, IReadOnlyList<string> values, IReadOnlyList<string> checks,
        IReadOnlyDictionary<string, long[]> inputShapes, Func<IReadOnlyList<string>, Dictionary<string, long[]>> run,
        Dictionary<string, TensorElementType>? types, out int inferredCount)
    {
        var inferred = Read(model, values.Concat(checks), inputShapes);
        var shapes = run([.. values.Where(v => !inferred.ContainsKey(v)).Concat(checks).Distinct(StringComparer.Ordinal)]);
        if (!Agree(inferred, shapes, types))
        {
            // ONNX Runtime ran the model to other shapes than it inferred: every value is read from a run then.
            types?.Clear();
            inferredCount = 0;
            return run(values);
        }
        foreach (var (name, (shape, type)) in inferred)
        {
            shapes.TryAdd(name, shape);
            types?.TryAdd(name, type);
        }
        inferredCount = values.Count(inferred.ContainsKey);
        return shapes;
    }

    /// <summary>Whether every value <paramref name="ran"/> to a shape has the shape (and, where given, the type) inferred for it.</summary>
    public static bool Agree(IReadOnlyDictionary<string, (long[] Shape, TensorElementType Type)> inferred, IReadOnlyDictionary<string, long[]> ran,
        IReadOnlyDictionary<string, TensorElementType>? ranTypes = null)
    {
        foreach (var (name, shape) in ran)
        {
            if (!inferred.TryGetValue(name, out var expected)) continue;
            if (!expected.Shape.AsSpan().SequenceEqual(shape)) return false;
            if (ranTypes is not null && ranTypes.TryGetValue(name, out var type) && type != expected.Type) return false;
        }
        return true;
    }
}
