using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// Writes planned bias changes into the sliced graph. When the reading layer's output goes only into a
/// BatchNormalization, the change is subtracted from that BatchNorm's mean (no parameter is added);
/// otherwise it is added to the layer's bias (Conv/ConvTranspose input 2, Gemm C divided by beta), which
/// is created when absent. A stored tensor that something else reads too is copied first.
/// </summary>
internal static class BiasWriter
{
    /// <returns>Layers whose bias or BatchNorm mean changed, and notes on those that could not be corrected.</returns>
    public static (int Written, List<string> Notes) Apply(Graph graph, ChannelGroupSet groups, Func<int, int[]> keepOf, IReadOnlyList<BiasDelta> deltas,
        List<Node> orphanCandidates)
    {
        var notes = new List<string>();
        int written = 0;
        foreach (var entry in deltas)
        {
            var (consumer, full) = entry;
            graph.Reindex();
            var node = graph.Nodes.FirstOrDefault(n => n.Equals(consumer));
            if (node is null) continue;
            // The layer's own outputs may have been pruned: keep the entries of its kept outputs.
            var producerSite = groups.Sites.OfType<TensorSite>().FirstOrDefault(s => s.Node.Equals(consumer) && s.Role == SiteRole.ProducerWeight);
            double[] delta = full;
            double[]? ratio = entry.VarianceRatio;
            if (producerSite is not null)
            {
                var kept = ChannelPruner.Indices(producerSite.Layout, keepOf);
                if (kept.Length != full.Length) delta = [.. kept.Select(o => full[o])];
                if (ratio is not null && kept.Length != ratio.Length) ratio = [.. kept.Select(o => ratio[o])];
            }
            if (ratio is not null) ScaleBatchNormVariance(graph, node, ratio, orphanCandidates);
            if (delta.All(d => d == 0)) continue;
            if (IntoBatchNormMean(graph, node, delta, orphanCandidates) || IntoBias(graph, node, delta, orphanCandidates)) written++;
            else notes.Add($"{node}: no bias to correct");
        }
        graph.Reindex();
        return (written, notes);
    }

    private static bool ScaleBatchNormVariance(Graph graph, Node node, double[] ratio, List<Node> orphans)
    {
        string output = node.Outputs[0];
        if (graph.IsGraphOutput(output) || graph.Consumers(output) is not [{ OpType: "BatchNormalization" } bn] || bn.Input(0) != output) return false;
        if (graph.ResolveWeight(bn.Input(4)) is not { Tensor.IsFloating: true } variance || variance.Tensor.ElementCount != ratio.Length) return false;
        float eps = BatchNormFold.Epsilon(bn);
        var values = variance.Tensor.ToFloats();
        // Var[new] = ratio·(Var + ε) − ε keeps the normalisation's denominator proportional.
        for (int o = 0; o < values.Length; o++) values[o] = (float)Math.Max(ratio[o] * (values[o] + eps) - eps, 0);
        Store(graph, bn, 4, variance, values, orphans);
        return true;
    }

    private static bool IntoBatchNormMean(Graph graph, Node node, double[] delta, List<Node> orphans)
    {
        string output = node.Outputs[0];
        if (graph.IsGraphOutput(output) || graph.Consumers(output) is not [{ OpType: "BatchNormalization" } bn] || bn.Input(0) != output) return false;
        if (graph.ResolveWeight(bn.Input(3)) is not { Tensor.IsFloating: true } mean || mean.Tensor.ElementCount != delta.Length) return false;
        var values = mean.Tensor.ToFloats();
        for (int o = 0; o < values.Length; o++) values[o] = (float)(values[o] - delta[o]);
        Store(graph, bn, 3, mean, values, orphans);
        return true;
    }

    private static bool IntoBias(Graph graph, Node node, double[] delta, List<Node> orphans)
    {
        double beta = 1;
        if (node.OpType == "Gemm")
        {
            beta = node.GetFloat("beta", 1f);
            if (beta == 0) return false;
        }
        else if (node.OpType is not ("Conv" or "ConvTranspose")) return false;
        if (node.Input(2).Length > 0)
        {
            if (graph.ResolveWeight(node.Input(2)) is not { Tensor.IsFloating: true } bias || bias.Tensor.ElementCount != delta.Length) return false;
            var values = bias.Tensor.ToFloats();
            for (int o = 0; o < values.Length; o++) values[o] = (float)(values[o] + delta[o] / beta);
            Store(graph, node, 2, bias, values, orphans);
            return true;
        }
        var created = new float[delta.Length];
        for (int o = 0; o < created.Length; o++) created[o] = (float)(delta[o] / beta);
        string name = graph.UniqueName($"{node.Id}_bias");
        int type = graph.ResolveWeight(node.Input(1)) is { } weight ? ReceivedType(graph, node.Input(1), weight.Tensor.DataType) : DataType.Float;
        graph.AddInitializer(Tensor.FromFloats(name, [delta.Length], created, type));
        while (node.Inputs.Count < 2) node.Inputs.Add("");
        if (node.Inputs.Count == 2) node.Inputs.Add(name);
        else node.Inputs[2] = name;
        return true;
    }

    /// <summary>
    /// Writes new values: in place when only this node reads the stored tensor (directly or through Identity/Cast, which
    /// then keep converting it: a float16 tensor behind a Cast stays float16), else into a fresh initializer for this node.
    /// </summary>
    private static void Store(Graph graph, Node reader, int input, WeightRef weight, float[] values, List<Node> orphans)
    {
        string stored = WeightReaders.StoredName(weight);
        bool exclusive = weight.ConstantNode is null && !graph.IsGraphOutput(stored)
            && weight.PassThrough.All(p => p.Outputs.All(o => !graph.IsGraphOutput(o)))
            && WeightReaders.Of(graph, stored).All(r => r.Node.Equals(reader) && r.Index == input);
        if (exclusive)
        {
            weight.Tensor.SetFloats(weight.Tensor.Dims, values);
            return;
        }
        string name = graph.UniqueName($"{weight.Tensor.Name}_{reader.Id}");
        int type = ReceivedType(graph, reader.Input(input), weight.Tensor.DataType);
        graph.AddInitializer(Tensor.FromFloats(name, weight.Tensor.Dims, values, type));
        orphans.AddRange(weight.PassThrough);
        if (weight.ConstantNode is { } constant) orphans.Add(constant);
        reader.Inputs[input] = name;
        graph.Reindex();
    }

    private static int ReceivedType(Graph graph, string value, int storedType)
    {
        for (var node = graph.Producer(value); node is { OpType: "Identity" or "Cast" }; node = graph.Producer(node.Input(0)))
            if (node.OpType == "Cast") return (int)node.GetInt("to", storedType);
        return storedType;
    }
}
