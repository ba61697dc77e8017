using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>Reductions over other axes (ReduceMean over H, W) keep the channels; reducing over the channel axis (or all axes) is frozen.</summary>
internal sealed class ReduceRule : IOperatorRule
{
    public static readonly ReduceRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        long[]? axes = RuleHelpers.Axes(flow, node, 1);
        if (axes is null || axes.Length == 0)
        {
            flow.Freeze(input, axes is null ? $"{node} reduces over all axes" : $"{node} has computed axes");
            return;
        }
        var normalized = axes.Select(a => RuleHelpers.NormalizeAxis(a, input.Rank)).ToArray();
        if (normalized.Contains(input.Axis) || normalized.Contains(-1) || !input.IsPlain)
        {
            flow.Freeze(input, $"{node} reduces over the channel axis");
            return;
        }
        bool keep = node.GetInt("keepdims", 1) != 0;
        int axis = keep ? input.Axis : input.Axis - normalized.Count(a => a < input.Axis);
        flow.SetLayout(node.Outputs[0], input.WithAxis(keep ? input.Rank : input.Rank - normalized.Distinct().Count(), axis));
    }

    // Mean, sum, max, min and L1/L2 norms over other axes are positively homogeneous.
    public double Ratio(RatioContext ctx) => Proportion.Positive(ctx.InputRatio(0));
}
