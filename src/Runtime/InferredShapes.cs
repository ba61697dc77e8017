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
