using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// MatMul X·W with a constant 2-D W (a linear layer, channels last): X's last axis is W's axis 0, a new set
/// of N outputs is W's axis 1. A product of two activations (attention) is frozen.
/// </summary>
internal sealed class MatMulRule : ILayerRule
{
    public static readonly MatMulRule Instance = new();

    /// <summary>W is K × N; no bias input.</summary>
    public LayerWeight? Weight(Node node, long[] weightDims) =>
        weightDims.Length == 2 ? new LayerWeight(OutputAxis: 1, InputAxis: 0, Groups: 1, weightDims[1], weightDims[0], BiasInput: -1) : null;

    /// <summary>(output elements)·K, K the last dim of X.</summary>
    public long Macs(Node node, long[]? weightDims, Func<string, long[]?> shape)
    {
        if (shape(node.Outputs[0]) is not { } output || shape(node.Input(0)) is not { Length: > 0 } a) return 0;
        return ModelCost.Product(output) * a[^1];
    }

    public void Propagate(ChannelFlow flow, Node node)
    {
        var input = flow.Layout(node.Input(0));
        if (RuleHelpers.MatrixWeight(flow, node, why: "multiplies two computed tensors") is not { } weight) return;
        int? rank = flow.Rank(node.Input(0));
        var layout = Weight(node, weight.Tensor.Dims)!;
        int outChannels = (int)layout.Outputs;
        if (rank is not { } r || r < 2)
        {
            flow.Freeze(input, $"{node} input has unknown rank");
            flow.Freeze(flow.NewChannels(node, outChannels, 2, 1), $"{node} input has unknown rank");
            return;
        }
        var output = flow.NewChannels(node, outChannels, r, r - 1);
        if (input is not null)
        {
            if (input.Axis != r - 1) flow.Freeze(input, $"{node} reads channels on axis {input.Axis}, not the last");
            else flow.AddTensorSite(node, 1, layout.InputAxis, input, SiteRole.ConsumerWeight);
        }
        flow.AddTensorSite(node, 1, layout.OutputAxis, output, SiteRole.ProducerWeight);
        flow.SetLayout(node.Outputs[0], output);
    }

    public double Ratio(RatioContext ctx) => RuleHelpers.ProducerRatio(ctx, 1, -1);
}
