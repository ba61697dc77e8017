using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Softmax over another axis keeps channels apart (spatial attention); over the channel axis it mixes them
/// and is frozen. Before opset 13 the input is coerced to 2-D at `axis`, so every axis from there on mixes.
/// </summary>
internal sealed class SoftmaxRule : IOperatorRule
{
    public static readonly SoftmaxRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        bool coerced = flow.Opset is > 0 and < 13;
        if (flow.Opset == 0 && !node.HasAttribute("axis"))
        {
            flow.Freeze(input, $"{node} has an opset-dependent default axis");
            return;
        }
        int axis = RuleHelpers.NormalizeAxis(node.GetInt("axis", coerced ? 1 : -1), input.Rank);
        bool mixes = coerced ? input.Axis >= axis : input.Axis == axis;
        if (mixes || axis < 0)
        {
            flow.Freeze(input, $"{node} normalises over the channels");
            return;
        }
        flow.SetLayout(node.Outputs[0], input);
    }

    public double Ratio(RatioContext ctx) => Proportion.Unit(ctx.InputRatio(0));
}
