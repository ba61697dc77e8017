using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Split on the channel axis: each output holds a range of the input's channels (possibly cutting a group);
/// its size (the `split` attribute or input) becomes the number of kept channels in that range. Split on
/// another axis passes the channels to every output. An implicit equal split is frozen: the sizes would
/// have to be written out.
/// </summary>
internal sealed class SplitRule : IOperatorRule
{
    public static readonly SplitRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        int axis = RuleHelpers.NormalizeAxis(node.GetInt("axis", 0), input.Rank);
        if (axis != input.Axis)
        {
            RuleHelpers.PassThrough(flow, node, input);
            return;
        }
        if (!input.IsPlain)
        {
            flow.Freeze(input, $"{node} splits flattened channels");
            return;
        }
        bool inAttribute = node.HasAttribute("split");
        long[]? sizes = inAttribute ? node.GetInts("split") : flow.ConstantInts(node.Input(1));
        if (sizes is null || sizes.Length != node.Outputs.Count || sizes.Sum() != input.Channels)
        {
            flow.Freeze(input, node.Input(1).Length > 0 && !inAttribute ? $"{node} has computed split sizes" : $"{node} splits channels into implicit equal parts");
            return;
        }
        int from = 0;
        for (int k = 0; k < sizes.Length; k++)
        {
            int to = from + (int)sizes[k];
            if (to > from) flow.SetLayout(node.Outputs[k], input.Cut(from, to));
            flow.AddCountSite(inAttribute
                ? CountSite.InAttribute(node, "split", k, input, from, to)
                : CountSite.InInput(node, 1, k, input, from, to));
            from = to;
        }
    }

    public double Ratio(RatioContext ctx) => ctx.PairRatio();
}
