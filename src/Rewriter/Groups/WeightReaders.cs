using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>Who reads a stored tensor: every (node, input index) reached from it through Identity / float Cast pass-throughs.</summary>
internal static class WeightReaders
{
    /// <summary>The value a weight is stored under: the initializer's name or the Constant node's output.</summary>
    public static string StoredName(WeightRef weight) => weight.ConstantNode?.Outputs[0] ?? weight.Tensor.Name;

    /// <summary>Readers of <paramref name="value"/>; a subgraph capture is reported with input index -1.</summary>
    public static IEnumerable<(Node Node, int Index)> Of(Graph graph, string value)
    {
        foreach (var consumer in graph.Consumers(value))
        {
            bool passThrough = consumer.OpType is "Identity" || consumer.OpType == "Cast" && DataType.IsFloating((int)consumer.GetInt("to", 0));
            if (passThrough && consumer.Inputs.Count == 1)
            {
                foreach (var r in Of(graph, consumer.Outputs[0])) yield return r;
                continue;
            }
            bool any = false;
            for (int i = 0; i < consumer.Inputs.Count; i++)
                if (consumer.Inputs[i] == value) { any = true; yield return (consumer, i); }
            if (!any) yield return (consumer, -1);
        }
    }
}
