using OnnxSlim.GraphIO;

namespace OnnxSlim.Pruning;

/// <summary>
/// Models onnxslim refuses before any work, each with what is wrong and where: quantized graphs, graphs that
/// cannot run (no outputs, values read but never defined, values defined twice, cycles), and weights the
/// spectra cannot be computed from (NaN or ±Inf). Tensor storage (dims, sizes, external data) is checked by
/// GraphIO when the model is read.
/// </summary>
public static class ModelChecks
{
    private static readonly string[] QuantizedOps = ["ConvInteger", "QLinearConv", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear"];

    /// <summary>Operators whose constant inputs (by index) the planner and the rewriter compute with.</summary>
    private static readonly Dictionary<string, int[]> NumericInputs = new(StringComparer.Ordinal)
    {
        ["Conv"] = [1, 2], ["ConvTranspose"] = [1, 2], ["Gemm"] = [1, 2], ["MatMul"] = [1], ["BatchNormalization"] = [1, 2, 3, 4],
    };

    /// <summary>Every check below; <see cref="PruningException"/> naming the first problem.</summary>
    public static void Check(OnnxModel model, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        RefuseQuantized(model, source);
        RefuseBrokenGraph(model, source);
        RefuseNonFiniteWeights(model, source);
    }

    /// <summary>Quantized graphs are out of scope: prune the float model, then quantize.</summary>
    public static void RefuseQuantized(OnnxModel model, string? source = null)
    {
        if (model.Graph.Nodes.FirstOrDefault(n => QuantizedOps.Contains(n.OpType)) is { } q)
            throw new PruningException($"{Name(source)} is a quantized model ({q.OpType}): prune the float model, then quantize");
    }

    /// <summary>A graph nothing could run: no outputs, a value read but never defined or defined twice, a cycle.</summary>
    public static void RefuseBrokenGraph(OnnxModel model, string? source = null)
    {
        var g = model.Graph;
        string where = Name(source);
        if (g.OutputNames.Count == 0) throw new PruningException($"{where} has a graph with no outputs: nothing could run it");

        // Who defines each value: a graph input, an initializer, or a node's output; each once.
        var definedBy = new Dictionary<string, string>(StringComparer.Ordinal);
        void Define(string value, string what)
        {
            if (!definedBy.TryAdd(value, what))
                throw new PruningException($"{where}: value '{value}' is defined twice ({definedBy[value]} and {what})");
        }
        foreach (var t in g.InitializerNames) Define(t, $"initializer '{t}'");
        var initializers = new HashSet<string>(g.InitializerNames, StringComparer.Ordinal);
        var inputs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in g.InputNames)
        {
            if (!inputs.Add(i)) throw new PruningException($"{where}: graph input '{i}' is listed twice");
            if (!initializers.Contains(i)) Define(i, $"graph input '{i}'");
        }
        var producer = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (var n in model.Graph.Nodes)
            foreach (var o in n.Outputs)
                if (o.Length > 0)
                {
                    Define(o, $"{n.OpType} '{n.Id}'");
                    producer[o] = n;
                }

        foreach (var n in model.Graph.Nodes)
            foreach (var i in n.Inputs)
                if (i.Length > 0 && !definedBy.ContainsKey(i))
                    throw new PruningException($"{where}: {n.OpType} '{n.Id}' reads '{i}', which no node, initializer or graph input defines");
        foreach (var o in g.OutputNames)
            if (!definedBy.ContainsKey(o))
                throw new PruningException($"{where}: graph output '{o}' is not defined by any node, initializer or graph input");

        // Kahn's order over node-to-node edges: whatever is left over lies on a cycle.
        var nodes = model.Graph.Nodes;
        var index = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance);
        for (int k = 0; k < nodes.Count; k++) index[nodes[k]] = k;
        var waiting = new int[nodes.Count];
        var readers = new List<int>[nodes.Count];
        for (int k = 0; k < nodes.Count; k++) readers[k] = [];
        for (int k = 0; k < nodes.Count; k++)
            foreach (var i in nodes[k].Inputs.Distinct())
                if (i.Length > 0 && producer.TryGetValue(i, out var p))
                {
                    waiting[k]++;
                    readers[index[p]].Add(k);
                }
        var ready = new Queue<int>(Enumerable.Range(0, nodes.Count).Where(k => waiting[k] == 0));
        int ordered = 0;
        while (ready.Count > 0)
        {
            int k = ready.Dequeue();
            ordered++;
            foreach (int r in readers[k])
                if (--waiting[r] == 0) ready.Enqueue(r);
        }
        if (ordered < nodes.Count)
        {
            var stuck = nodes[Enumerable.Range(0, nodes.Count).First(k => waiting[k] > 0)];
            throw new PruningException($"{where}: the graph has a cycle through {stuck.OpType} '{stuck.Id}'");
        }
    }

    /// <summary>NaN or ±Inf in a weight, bias or BatchNorm parameter of a layer: its spectrum and the rewrite would be meaningless.</summary>
    public static void RefuseNonFiniteWeights(OnnxModel model, string? source = null)
    {
        var graph = model.Graph;
        var checkedTensors = new HashSet<Tensor>();
        foreach (var n in graph.Nodes)
        {
            if (!n.IsStandard || !NumericInputs.TryGetValue(n.OpType, out var indices)) continue;
            foreach (int k in indices)
            {
                if (graph.ResolveWeight(n.Input(k)) is not { Tensor: { IsFloating: true } tensor }) continue;
                if (!checkedTensors.Add(tensor)) continue;
                // Stored float32 bytes are read in place: a copy of every weight (553 MB for VGG-16) is garbage the
                // collector may not return before the shape probe's peak.
                float[]? copy = tensor.TryGetRawFloats(out var raw) ? null : tensor.ToFloats();
                var values = copy ?? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw.Span);
                for (int e = 0; e < values.Length; e++)
                {
                    if (float.IsFinite(values[e])) continue;
                    string value = float.IsNaN(values[e]) ? "NaN" : values[e] > 0 ? "+Inf" : "-Inf";
                    throw new PruningException($"{Name(source)}: {n.OpType} '{n.Id}' {InputName(n.OpType, k)} '{tensor.Name}' holds {value} " +
                        $"(element {e} of {values.Length}); onnxslim needs finite weights");
                }
            }
        }
    }

    private static string InputName(string op, int k) => op == "BatchNormalization"
        ? k switch { 1 => "scale", 2 => "bias", 3 => "mean", _ => "variance" }
        : k == 1 ? "weight" : "bias";

    private static string Name(string? source) => source is null ? "the model" : $"'{source}'";
}
