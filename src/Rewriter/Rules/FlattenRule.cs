using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Flatten at the channel axis: [N, C, H, W] → [N, C·H·W], each channel owning H·W consecutive features
/// (1 after global pooling). When H·W is not known here the Gemm that reads the features works it out
/// from its weight size.
/// </summary>
internal sealed class FlattenRule : IOperatorRule
{
    public static readonly FlattenRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        int axis = RuleHelpers.NormalizeAxis(node.GetInt("axis", 1), input.Rank);
        if (node.GetInt("axis", 1) == input.Rank) axis = input.Rank; // flatten everything into the first dim
        if (axis != input.Axis)
        {
            flow.Freeze(input, $"{node} flattens at axis {axis}, mixing channels (axis {input.Axis}) with other dims");
            return;
        }
        long inner = 1;
        var shape = flow.Shape(node.Input(0));
        for (int d = input.Axis + 1; d < input.Rank; d++)
        {
            long size = shape is not null && shape.Length == input.Rank ? shape[d] : -1;
            if (size <= 0) { inner = 0; break; }
            inner *= size;
        }
        flow.SetLayout(node.Outputs[0], input.TimesInner(inner, 2, 1));
    }

    public double Ratio(RatioContext ctx) => ctx.PairRatio();
}
