using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// MatMul X·W with a constant 2-D W (a linear layer, channels last): X's last axis is W's axis 0, a new set
/// of N outputs is W's axis 1. A product of two activations (attention) is frozen.
/// </summary>
internal sealed class MatMulRule : IOperatorRule
{
    public static readonly MatMulRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        var input = flow.Layout(node.Input(0));
        var weight = flow.Graph.ResolveWeight(node.Input(1));
        if (weight is null || !weight.Tensor.IsFloating || weight.Tensor.Rank != 2)
        {
            flow.FreezeInputs(node, $"{node} multiplies two computed tensors");
            return;
        }
        int? rank = flow.Rank(node.Input(0));
        int outChannels = (int)weight.Tensor.Dims[1];
        int set = flow.NewSet(outChannels, node);
        if (rank is not { } r || r < 2)
        {
            flow.Freeze(input, $"{node} input has unknown rank");
            flow.Freeze(set, $"{node} input has unknown rank");
            return;
        }
        if (input is not null)
        {
            if (input.Axis != r - 1) flow.Freeze(input, $"{node} reads channels on axis {input.Axis}, not the last");
            else flow.AddTensorSite(node, 1, 0, input, SiteRole.ConsumerWeight);
        }
        var output = ChannelLayout.Single(r, r - 1, set, outChannels);
        flow.AddTensorSite(node, 1, 1, output, SiteRole.ProducerWeight);
        flow.SetLayout(node.Outputs[0], output);
    }

    public double Ratio(RatioContext ctx) => RuleHelpers.ProducerRatio(ctx, 1, -1);
}
