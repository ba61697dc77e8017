using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Channel-wise functions (ReLU, Clip, Sigmoid, …) and spatial ops (pooling): output channels are the
/// input's. Extra inputs (Clip bounds) are scalars. The three instances differ in what they pass when
/// merging: positive ratios (ReLU, pooling: f(r·x) = r·f(x)) or only exact copies (Clip, Sigmoid).
/// </summary>
internal sealed class PointwiseRule : IOperatorRule
{
    public static readonly PointwiseRule Homogeneous = new(spatial: false, homogeneous: true);
    public static readonly PointwiseRule Spatial = new(spatial: true, homogeneous: true);
    public static readonly PointwiseRule Nonlinear = new(spatial: false, homogeneous: false);

    private readonly bool _spatial;
    private readonly bool _homogeneous;

    private PointwiseRule(bool spatial, bool homogeneous)
    {
        _spatial = spatial;
        _homogeneous = homogeneous;
    }

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input)
        {
            // Clip bounds or other side inputs that carry channels would be per-channel: not handled.
            flow.FreezeInputs(node, $"{node} has channels in a side input");
            return;
        }
        if (node.Inputs.Skip(1).Any(i => flow.Layout(i) is not null))
        {
            flow.FreezeInputs(node, $"{node} has channels in a side input");
            return;
        }
        if (_spatial && (input.Axis != 1 || !input.IsPlain || input.Rank < 3))
        {
            flow.Freeze(input, $"{node} pools a tensor laid out as {input}");
            return;
        }
        // MaxPool's second output holds flat indices that encode channel offsets.
        if (node.OpType == "MaxPool" && node.Outputs.Count > 1 && node.Outputs[1].Length > 0 && flow.Graph.Consumers(node.Outputs[1]).Count > 0)
        {
            flow.Freeze(input, $"{node} returns indices");
            return;
        }
        RuleHelpers.PassThrough(flow, node, input);
    }

    public double Ratio(RatioContext ctx)
    {
        // Casts to integers round: only copies stay copies.
        bool homogeneous = _homogeneous && !(ctx.Node.OpType == "Cast" && !GraphIO.DataType.IsFloating((int)ctx.Node.GetInt("to", 1)));
        return homogeneous ? Proportion.Positive(ctx.InputRatio(0)) : Proportion.Unit(ctx.InputRatio(0));
    }
}
