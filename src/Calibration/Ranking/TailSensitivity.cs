using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// The end-to-end check (<see cref="GroupSensitivity"/>) of the groups whose readers sit in a model's cheap tail: the
/// layers between some of its values and its outputs that read nothing else from the model's inputs. Each candidate
/// runs only that tail, from the original's values at the cut, so a model too costly to run whole once per group
/// (PP-OCRv4 det: 2.3 GMACs a page, 36 groups) is still checked where its outputs are written: det's head is 26 % of
/// its MACs, and the relative error of its local curves there says least about the mask.
/// </summary>
public static class TailSensitivity
{
    /// <summary>A cut and the nodes that compute the model's outputs from it.</summary>
    public sealed record Tail(IReadOnlyList<string> Cut, IReadOnlySet<Node> Nodes, long Macs)
    {
        /// <summary>Whether every reader the candidate re-fits runs in this tail (else the tail cannot measure it).</summary>
        public bool Holds(GroupSensitivity.Candidate candidate) => candidate.Readers.All(r => Nodes.Contains(r.Reader.Layer));
    }

    /// <summary>
    /// The tail that starts at <paramref name="values"/> (those computed from another of them dropped: they are computed in
    /// the tail), or null when the outputs also need the model's inputs by another path, or a value is a model input.
    /// </summary>
    public static Tail? Find(Graph graph, IEnumerable<string> values, Func<Node, long> macs)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(macs);
        var all = values.Distinct(StringComparer.Ordinal).ToList();
        if (all.Count == 0 || all.Any(v => graph.Producer(v) is null)) return null;
        var below = Descendants(graph, all);
        var cut = all.Where(v => !below.Contains(v)).Order(StringComparer.Ordinal).ToList();
        var outputs = graph.Outputs.Select(o => o.Name).ToList();
        var nodes = SubModel.Ancestors(graph, outputs, cut.ToHashSet(StringComparer.Ordinal));
        if (outputs.Count == 0 || nodes.Any(n => n.ReadNames().Any(graph.IsRuntimeInput))) return null;
        return new Tail(cut, nodes, nodes.Sum(macs));
    }

    /// <summary>Values computed from <paramref name="values"/> (not those themselves unless computed from another).</summary>
    private static HashSet<string> Descendants(Graph graph, IReadOnlyList<string> values)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(values);
        while (stack.Count > 0)
            foreach (var node in graph.Consumers(stack.Pop()))
                foreach (var o in node.Outputs)
                    if (o.Length > 0 && seen.Add(o)) stack.Push(o);
        return seen;
    }

    /// <summary>
    /// <see cref="GroupSensitivity.Measure"/> on the tail alone: the original model computes the cut's values on
    /// <paramref name="samples"/> once, then every candidate runs the tail from them. Candidates whose readers are not in
    /// the tail are left out; nothing is measured when a cut value is not float32.
    /// </summary>
    public static Dictionary<int, double> Measure(OnnxModel model, Tail tail, IReadOnlyDictionary<int, GroupSensitivity.Candidate> candidates,
        IReadOnlyList<NamedTensor> samples, Provider provider = Provider.Cpu)
    {
        ArgumentNullException.ThrowIfNull(tail);
        ArgumentNullException.ThrowIfNull(candidates);
        return Measure(model, [(tail, candidates)], samples, provider);
    }

    /// <summary>
    /// As <see cref="Measure(OnnxModel, Tail, IReadOnlyDictionary{int, GroupSensitivity.Candidate}, IReadOnlyList{NamedTensor}, Provider)"/>
    /// for several tails, each with its own candidates: one run of the original model computes every tail's cut.
    /// </summary>
    public static Dictionary<int, double> Measure(OnnxModel model, IReadOnlyList<(Tail Tail, IReadOnlyDictionary<int, GroupSensitivity.Candidate> Candidates)> parts,
        IReadOnlyList<NamedTensor> samples, Provider provider = Provider.Cpu)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(parts);
        var measured = parts.Select(p => (p.Tail, InTail: p.Candidates.Where(c => p.Tail.Holds(c.Value))
            .ToDictionary(c => c.Key, c => c.Value))).Where(p => p.InTail.Count > 0).ToList();
        var result = new Dictionary<int, double>();
        if (measured.Count == 0) return result;
        var cuts = measured.SelectMany(p => p.Tail.Cut).Distinct(StringComparer.Ordinal).ToList();
        Dictionary<string, NamedTensor> values;
        using (var prefix = ModelRunner.ForValues(model, cuts, provider))
            // In one run, unless the model fixes its batch (exports often fix it at 1): then that many samples at a time.
            values = prefix.RunInBatches(samples, (int)samples[0].Shape[0], cuts).ToDictionary(v => v.Name, StringComparer.Ordinal);
        var outputs = model.Graph.Outputs.Select(o => o.Name).ToList();
        foreach (var (tail, inTail) in measured)
        {
            var cut = tail.Cut.Select(c => values[c]).ToList();
            if (cut.Any(v => v.ElementType != TensorElementType.Float || v.Data is not float[])) continue;
            using var part = model.ExtractModel(tail.Nodes, cut.Select(v => (v.Name, v.Shape)), "check_batch", outputs, "onnxslim-tail-check");
            foreach (var (id, damage) in GroupSensitivity.Measure(part, inTail, cut, provider)) result[id] = damage;
        }
        return result;
    }
}
