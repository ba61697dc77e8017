using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// ConvTranspose, weight C_in × C_out/group × k… (the transpose of Conv's layout): input channels on weight
/// axis 0, a new set of C_out channels on weight axis 1 and the bias. Depthwise (group = C_in, one output
/// per group) keeps its input's channels; other grouped forms are frozen.
/// </summary>
internal sealed class ConvTransposeRule : IOperatorRule
{
    public static readonly ConvTransposeRule Instance = new();

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
        long group = node.GetInt("group", 1);
        int outChannels = (int)(dims[1] * group);
        if (input is not null && (input.Rank != rank || input.Axis != 1 || !input.IsPlain))
        {
            flow.Freeze(input, $"{node} reads channels laid out as {input}");
            input = null;
        }
        if (group == 1)
        {
            if (input is not null) flow.AddTensorSite(node, 1, 0, input, SiteRole.ConsumerWeight);
            var output = ChannelLayout.Single(rank, 1, flow.NewSet(outChannels, node), outChannels);
            flow.AddTensorSite(node, 1, 1, output, SiteRole.ProducerWeight);
            if (node.Input(2).Length > 0) flow.AddTensorSite(node, 2, 0, output, SiteRole.ProducerBias);
            flow.SetLayout(node.Outputs[0], output);
            return;
        }
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
        string reason = depthwise ? $"{node} is depthwise over channels that are not tracked" : $"{node} is a grouped transposed conv (group={group})";
        flow.Freeze(input, reason);
        int set = flow.NewSet(outChannels, node);
        flow.Freeze(set, reason);
        flow.SetLayout(node.Outputs[0], ChannelLayout.Single(rank, 1, set, outChannels));
    }

    public double Ratio(RatioContext ctx) =>
        ctx.IsProducer ? RuleHelpers.ProducerRatio(ctx, 1, 2) : RuleHelpers.DepthwiseRatio(ctx, 1, 2);
}
