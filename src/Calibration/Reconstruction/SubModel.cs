using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// A model cut down to what computes some chosen values: only their ancestor nodes, the initializers
/// those read, and the values as the (untyped) outputs. It may also start from already-known values
/// (a cut): those become float inputs and nothing before them is computed. Runs then cost what the
/// segment costs, not the whole network, and weights are shared with the source proto, not copied,
/// until serialisation.
/// The callers hold every fed or returned value in float32 memory. A value that the graph computes in
/// float16, bfloat16 or float64 (known from <c>types</c>) therefore crosses the boundary through a Cast: returned
/// as a float32 copy, fed as float32 and cast back to its own type before its readers. Float16 and bfloat16 widen
/// to float32 exactly, so a value cached and fed back is bit for bit what the graph computed. One catch: ONNX
/// Runtime's CPU provider runs float16 kernels it lacks (Conv, …) in float32 between Casts it inserts, and then drops
/// a float32→float16→float32 Cast pair as redundant, our output Cast included, so a returned value may come back
/// unrounded; <see cref="RoundToOwnType"/> rounds it as the whole graph would have.
/// </summary>
internal static class SubModel
{
    /// <param name="Nodes">The nodes kept, in graph order (the boundary Casts not included).</param>
    /// <param name="Float32Names">The name ONNX Runtime feeds or returns a converted value under; other values go by their own.</param>
    /// <param name="ModelInputs">The model's runtime inputs the sub-model declares, all of which must be fed.</param>
    public sealed record Result(byte[] Bytes, IReadOnlyList<string> CutInputs, IReadOnlyList<Node> Nodes,
        IReadOnlyDictionary<string, string> Float32Names, IReadOnlySet<string> ModelInputs)
    {
        /// <summary>The name to feed or fetch <paramref name="value"/> under, as float32.</summary>
        public string Float32Name(string value) => Float32Names.GetValueOrDefault(value, value);
    }

    /// <param name="cut">Values that can be fed instead of computed, with their per-sample shapes.</param>
    /// <param name="types">Element types of the outputs and cut values (from <see cref="ValueShapes.Probe(OnnxModel, CalibrationData, Runtime.Provider, out Dictionary{string, TensorElementType})"/>);
    /// a value missing there is taken as float32.</param>
    /// <param name="onlyReadInputs">Declare only the model inputs the kept nodes read (else every one): a pass that starts
    /// from cached values then need not read the samples (PP-OCRv4 det: 4.9 MB a page, 33 passes over 32 pages).</param>
    public static Result Build(OnnxModel model, IReadOnlyCollection<string> outputs, IReadOnlyDictionary<string, long[]>? cut = null,
        IReadOnlyDictionary<string, TensorElementType>? types = null, bool onlyReadInputs = false)
    {
        if (outputs.Count == 0) throw new ArgumentException("a sub-model needs at least one output");
        var graph = model.Graph;
        foreach (var o in outputs)
            if (graph.Producer(o) is null) throw new ArgumentException($"value '{o}' is not computed by any node");
        var usable = new HashSet<string>(cut?.Keys ?? [], StringComparer.Ordinal);
        foreach (var o in outputs) usable.Remove(o);
        HashSet<Node> needed;
        HashSet<string> used;
        while (true)
        {
            (needed, used) = Walk(graph, outputs, usable);
            // A cut value that a needed node also produces (a multi-output node) cannot be an input too.
            var clash = needed.SelectMany(n => n.Outputs).Where(used.Contains).ToList();
            if (clash.Count == 0) break;
            foreach (var c in clash) usable.Remove(c);
        }

        var cutInputs = used.Order(StringComparer.Ordinal).ToList();
        var views = new Dictionary<string, (string Float32Name, int ElementType)>(StringComparer.Ordinal);
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in cutInputs.Concat(outputs))
            if (Converted(types, v) is { } type && !views.ContainsKey(v))
                views[v] = (Fresh(graph, v + "_float32", taken), (int)type);
        var kept = graph.Nodes.Where(needed.Contains).ToList();
        byte[] bytes = model.ExtractBytes(needed, cutInputs.Select(v => (v, cut![v])), "calibration_batch", outputs, "onnxslim-reconstruction", views, onlyReadInputs);
        var modelInputs = model.InputsDeclared(needed, onlyReadInputs).ToHashSet(StringComparer.Ordinal);
        return new Result(bytes, cutInputs, kept, views.ToDictionary(kv => kv.Key, kv => kv.Value.Float32Name, StringComparer.Ordinal), modelInputs);
    }

    /// <summary>Rounds returned values to their own type (see the class summary): float16 and bfloat16 to nearest even; others untouched.</summary>
    public static void RoundToOwnType(Span<float> values, TensorElementType type)
    {
        if (type == TensorElementType.Float16)
            for (int i = 0; i < values.Length; i++) values[i] = (float)(Half)values[i];
        else if (type == TensorElementType.BFloat16)
            for (int i = 0; i < values.Length; i++)
            {
                if (float.IsNaN(values[i])) continue;
                uint bits = BitConverter.SingleToUInt32Bits(values[i]);
                bits += 0x7FFFu + ((bits >> 16) & 1);
                values[i] = BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000u);
            }
    }

    /// <summary>The value's own type when it is a floating type other than float32 (so it needs a Cast at the boundary), else null.</summary>
    private static TensorElementType? Converted(IReadOnlyDictionary<string, TensorElementType>? types, string value) =>
        types?.GetValueOrDefault(value, TensorElementType.Float) is TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Double
            ? types[value] : null;

    /// <summary>A name no value of the graph has and none given out before.</summary>
    private static string Fresh(Graph graph, string stem, HashSet<string> taken)
    {
        string name = stem;
        for (int k = 1; graph.Producer(name) is not null || graph.Initializer(name) is not null || graph.IsRuntimeInput(name) || !taken.Add(name); k++)
            name = $"{stem}_{k}";
        return name;
    }

    /// <summary>
    /// The known values a sub-model for <paramref name="outputs"/> would start from (or return directly):
    /// what a cache must keep for that pass.
    /// </summary>
    public static HashSet<string> CutUsed(Graph graph, IEnumerable<string> outputs, IReadOnlySet<string> known)
    {
        var wanted = outputs.ToList();
        var used = Walk(graph, wanted, known.Except(wanted).ToHashSet(StringComparer.Ordinal)).CutUsed;
        used.UnionWith(wanted.Where(known.Contains));
        return used;
    }

    /// <summary>Nodes whose outputs the given values depend on, subgraph captures included; with <paramref name="known"/>, those not behind a known value.</summary>
    public static HashSet<Node> Ancestors(Graph graph, IEnumerable<string> values, IReadOnlySet<string>? known = null) =>
        Walk(graph, values, known?.ToHashSet(StringComparer.Ordinal) ?? []).Nodes;

    private static (HashSet<Node> Nodes, HashSet<string> CutUsed) Walk(Graph graph, IEnumerable<string> values, HashSet<string> cut)
    {
        var seen = new HashSet<Node>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(values);
        while (stack.Count > 0)
        {
            string value = stack.Pop();
            if (cut.Contains(value))
            {
                used.Add(value);
                continue;
            }
            var producer = graph.Producer(value);
            if (producer is null || !seen.Add(producer)) continue;
            foreach (var name in producer.ReadNames()) stack.Push(name);
        }
        return (seen, used);
    }
}
