using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter.Rules;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The per-channel affine nodes that directly follow a value (a layer's output): BatchNormalization, and
/// Mul/Div/Add/Sub by a constant, each the only reader of the value before it, which is no graph output.
/// Which nodes qualify and with which parameters is their rules' answer (<see cref="IAffineRule"/>). The
/// walk is lazy: callers stop where their use ends (after a BatchNorm, after a few hops).
/// </summary>
public static class AffineChain
{
    /// <param name="values">Per-channel values of a node's constant input, in the caller's channel order (a group's
    /// channels, a layer's outputs); null where not known per channel.</param>
    public static IEnumerable<AffineStep> After(Graph graph, string value, ChannelValues values)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(values);
        while (value.Length > 0 && !graph.IsGraphOutput(value) && graph.Consumers(value) is [var next])
        {
            if (OperatorRules.For(next) is not IAffineRule rule) yield break;
            int input = IndexOf(next, value);
            if (input < 0 || rule.Affine(graph, next, input, values) is not { } step) yield break;
            yield return step;
            value = next.Outputs[0];
        }
    }

    /// <summary>Scale and offset of the whole chain (at most <paramref name="maxSteps"/> nodes): y = scale·x + offset.</summary>
    public static (double[] Scale, double[] Offset, IReadOnlyList<AffineStep> Steps) Fold(Graph graph, string value, int channels, ChannelValues values, int maxSteps)
    {
        var scale = Enumerable.Repeat(1.0, channels).ToArray();
        var offset = new double[channels];
        var steps = new List<AffineStep>();
        foreach (var step in After(graph, value, values).Take(maxSteps))
        {
            if (!step.OffsetKnown) break;
            step.Fold(scale, offset);
            steps.Add(step);
        }
        return (scale, offset, steps);
    }

    private static int IndexOf(Node node, string value)
    {
        for (int k = 0; k < node.Inputs.Count; k++)
            if (node.Inputs[k] == value) return k;
        return -1;
    }
}
