using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>What a rule sees when asked how a j-to-i channel ratio passes through its node.</summary>
internal sealed class RatioContext
{
    private readonly MergeWalk _walk;

    internal RatioContext(MergeWalk walk, Node node, bool isProducer)
    {
        _walk = walk;
        Node = node;
        IsProducer = isProducer;
    }

    public Node Node { get; }

    /// <summary>Whether the node's output channels are the group's filters (a Conv/Gemm producer, not a depthwise member).</summary>
    public bool IsProducer { get; }

    /// <summary>null: input k does not carry channel j; NaN: it does, but not as a known multiple of channel i.</summary>
    public double? InputRatio(int k) => _walk.RatioOf(Node.Input(k));

    /// <summary>
    /// The constant at input k at channels j and i along its sliced axis; the whole tensor for both when the
    /// constant is not sliced for this group (it broadcasts over the channels); null when input k is not constant.
    /// </summary>
    public (float[] J, float[] I)? Slices(int k) => _walk.Slices(Node, k);

    /// <summary>The ratio of the inputs that carry both channels, for nodes that only move channels around.</summary>
    public double PairRatio()
    {
        double? ratio = null;
        for (int k = 0; k < Node.Inputs.Count; k++)
        {
            if (InputRatio(k) is not { } r) continue;
            if (double.IsNaN(r) || (ratio is { } seen && !Proportion.Near(seen, r))) return double.NaN;
            ratio = r;
        }
        return ratio ?? double.NaN;
    }
}
