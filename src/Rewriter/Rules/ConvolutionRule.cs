using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Conv (weight C_out × C_in/group × k…) and ConvTranspose (the transposed layout, C_in × C_out/group × k…):
/// a plain one reads its input channels on the weight's input axis and makes a new set of C_out channels
/// (the weight's output axis, and the bias). A depthwise one (group = C_in, one filter per group) keeps its
/// input's channels: weight axis 0, bias and the group attribute follow them. Any other grouped Conv (ResNeXt,
/// RegNet, a depthwise multiplier) maps input block b to output block b: both its input and its output channels
/// are tied into `group` blocks that keep equal counts (<see cref="ChannelGroup.Blocks"/>), so `group` stays and
/// the weight's input axis shrinks to one block's kept count. A grouped ConvTranspose is frozen.
/// </summary>
internal sealed class ConvolutionRule : ILayerRule
{
    public static readonly ConvolutionRule Conv = new(transposed: false);
    public static readonly ConvolutionRule ConvTranspose = new(transposed: true);

    private readonly bool _transposed;

    private ConvolutionRule(bool transposed) => _transposed = transposed;

    /// <summary>Conv: outputs on axis 0, one group's inputs on axis 1. ConvTranspose: inputs on axis 0, one group's outputs on axis 1.</summary>
    public LayerWeight? Weight(Node node, long[] weightDims)
    {
        if (weightDims.Length < 3) return null;
        long group = node.GetInt("group", 1);
        return _transposed
            ? new LayerWeight(OutputAxis: 1, InputAxis: 0, (int)group, weightDims[1] * group, weightDims[0], BiasInput: 2)
            : new LayerWeight(OutputAxis: 0, InputAxis: 1, (int)group, weightDims[0], weightDims[1] * group, BiasInput: 2);
    }

    /// <summary>Conv: C_out·H_out·W_out·(C_in/group)·k…; ConvTranspose: C_in·H_in·W_in·(C_out/group)·k… (each input tap is spread once).</summary>
    public long Macs(Node node, long[]? weightDims, Func<string, long[]?> shape)
    {
        if (weightDims is null || shape(_transposed ? node.Input(0) : node.Outputs[0]) is not { } map) return 0;
        return ModelCost.Product(map) * ModelCost.Product(weightDims) / weightDims[0];
    }

    public void Propagate(ChannelFlow flow, Node node)
    {
        var input = flow.Layout(node.Input(0));
        var weight = flow.Graph.ResolveWeight(node.Input(1));
        if (weight is null || !weight.Tensor.IsFloating || weight.Tensor.Rank < 3)
        {
            flow.Freeze(input, $"{node} has a computed weight");
            return;
        }
        long[] dims = weight.Tensor.Dims;
        int rank = dims.Length;
        var layout = Weight(node, dims)!;
        long group = layout.Groups;
        int outChannels = (int)layout.Outputs;
        if (input is not null && (input.Rank != rank || input.Axis != 1 || !input.IsPlain))
        {
            flow.Freeze(input, $"{node} reads channels laid out as {input}");
            input = null;
        }
        if (group == 1)
        {
            if (input is not null) flow.AddTensorSite(node, 1, layout.InputAxis, input, SiteRole.ConsumerWeight);
            var output = flow.NewChannels(node, outChannels, rank, 1);
            flow.AddTensorSite(node, 1, layout.OutputAxis, output, SiteRole.ProducerWeight);
            if (node.Input(2).Length > 0) flow.AddTensorSite(node, 2, 0, output, SiteRole.ProducerBias);
            flow.SetLayout(node.Outputs[0], output);
            return;
        }
        // One filter per group over one input channel: weight axis 0 is the shared channel in both layouts.
        bool depthwise = dims[1] == 1 && group == dims[0];
        if (depthwise && input is not null && input.Channels == dims[0])
        {
            flow.AddTensorSite(node, 1, 0, input, SiteRole.DepthwiseWeight);
            if (node.Input(2).Length > 0) flow.AddTensorSite(node, 2, 0, input, SiteRole.DepthwiseBias);
            flow.AddCountSite(CountSite.InAttribute(node, "group", -1, input, 0, input.Channels));
            flow.AddDepthwise(node, input);
            flow.SetLayout(node.Outputs[0], input);
            return;
        }
        if (!depthwise && !_transposed && outChannels % group == 0)
        {
            var output = flow.NewChannels(node, outChannels, rank, 1, blocks: (int)group);
            if (input is not null && flow.Tie(input, (int)group, node.ToString()))
                flow.AddGroupedInputSite(node, 1, layout.InputAxis, layout.OutputAxis, (int)group, input);
            flow.AddTensorSite(node, 1, layout.OutputAxis, output, SiteRole.ProducerWeight);
            if (node.Input(2).Length > 0) flow.AddTensorSite(node, 2, 0, output, SiteRole.ProducerBias);
            flow.SetLayout(node.Outputs[0], output);
            return;
        }
        string reason = depthwise ? $"{node} is depthwise over channels that are not tracked"
            : $"{node} is a grouped {(_transposed ? "transposed conv" : "conv")} (group={group})";
        flow.Freeze(input, reason);
        var frozen = flow.NewChannels(node, outChannels, rank, 1);
        flow.Freeze(frozen, reason);
        flow.SetLayout(node.Outputs[0], frozen);
    }

    public double Ratio(RatioContext ctx) =>
        ctx.IsProducer ? RuleHelpers.ProducerRatio(ctx, 1, 2) : RuleHelpers.DepthwiseRatio(ctx, 1, 2);
}
