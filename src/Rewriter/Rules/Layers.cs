using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter.Rules;

namespace OnnxSlim.Rewriter;

/// <summary>
/// What the rule table knows about weight-bearing layers, for code outside the rules (costs, compensation,
/// calibration): whether a node is one, its weight layout, its MACs. A new layer operator answers here by
/// having a rule that implements <see cref="ILayerRule"/>.
/// </summary>
public static class Layers
{
    public static bool IsLayer(Node node) => OperatorRules.For(node) is ILayerRule;

    /// <summary>The weight layout of <paramref name="node"/> at <paramref name="weightDims"/>; null when it is no layer or the dims do not fit it.</summary>
    public static LayerWeight? Weight(Node node, long[] weightDims)
    {
        ArgumentNullException.ThrowIfNull(weightDims);
        return (OperatorRules.For(node) as ILayerRule)?.Weight(node, weightDims);
    }

    /// <summary>The layout of the node's stored weight (input 1), or null when it is computed or the node is no layer.</summary>
    public static LayerWeight? Weight(Graph graph, Node node) =>
        node.Inputs.Count > 1 && graph.ResolveWeight(node.Input(1)) is { } w ? Weight(node, w.Tensor.Dims) : null;

    /// <summary>MACs of a layer at concrete shapes (0 when it is no layer or a shape is missing); see <see cref="ILayerRule.Macs"/>.</summary>
    public static long Macs(Node node, long[]? weightDims, Func<string, long[]?> shape) =>
        (OperatorRules.For(node) as ILayerRule)?.Macs(node, weightDims, shape) ?? 0;
}
