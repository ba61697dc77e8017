using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Slice with constant bounds. On other axes the channels pass through. On the channel axis with step 1 the
/// output is a channel range; its bounds become kept-channel counts. Bounds computed from the shape
/// (torch.chunk: Shape → Gather → Div → Mul, see <see cref="ShapeArithmetic"/>) are evaluated and replaced by
/// constants of the kept counts. Other computed bounds or strides on the channel axis are frozen.
/// </summary>
internal sealed class SliceRule : IOperatorRule
{
    public static readonly SliceRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        if (node.Inputs.Skip(1).Any(i => flow.Layout(i) is not null))
        {
            flow.FreezeInputs(node, $"{node} has channels in its bounds");
            return;
        }
        // Opset < 10 keeps the bounds in attributes, later opsets in inputs.
        bool inAttributes = node.HasAttribute("starts");
        long[]? starts = inAttributes ? node.GetInts("starts") : flow.ConstantInts(node.Input(1));
        long[]? ends = inAttributes ? node.GetInts("ends") : flow.ConstantInts(node.Input(2));
        long[]? computedStarts = null, computedEnds = null;
        if (!inAttributes && starts is null) starts = computedStarts = ShapeArithmetic.Evaluate(flow, node.Input(1));
        if (!inAttributes && ends is null) ends = computedEnds = ShapeArithmetic.Evaluate(flow, node.Input(2));
        long[]? axes = inAttributes ? node.GetInts("axes") : node.Input(3).Length > 0 ? flow.ConstantInts(node.Input(3)) : null;
        long[]? steps = inAttributes ? null : node.Input(4).Length > 0 ? flow.ConstantInts(node.Input(4)) : null;
        if (starts is null || ends is null || (!inAttributes && node.Input(3).Length > 0 && axes is null) || (!inAttributes && node.Input(4).Length > 0 && steps is null))
        {
            flow.Freeze(input, $"{node} has computed bounds");
            return;
        }
        axes ??= [.. Enumerable.Range(0, starts.Length).Select(i => (long)i)];
        int entry = Array.FindIndex(axes, a => RuleHelpers.NormalizeAxis(a, input.Rank) == input.Axis);
        if (entry < 0)
        {
            RuleHelpers.PassThrough(flow, node, input);
            return;
        }
        if ((steps is not null && steps[entry] != 1) || !input.IsPlain)
        {
            flow.Freeze(input, $"{node} slices channels with a stride");
            return;
        }
        int channels = input.Channels;
        int from = (int)Math.Clamp(starts[entry] < 0 ? starts[entry] + channels : starts[entry], 0, channels);
        int to = (int)Math.Clamp(ends[entry] < 0 ? ends[entry] + channels : ends[entry], 0, channels);
        if (to <= from)
        {
            flow.Freeze(input, $"{node} takes no channels");
            return;
        }
        if (computedStarts is not null) flow.AddCountSite(CountSite.InComputedInput(node, 1, entry, input, 0, from, computedStarts));
        else if (from > 0) flow.AddCountSite(inAttributes ? CountSite.InAttribute(node, "starts", entry, input, 0, from) : CountSite.InInput(node, 1, entry, input, 0, from));
        if (computedEnds is not null) flow.AddCountSite(CountSite.InComputedInput(node, 2, entry, input, 0, to, computedEnds));
        else if (to < channels) flow.AddCountSite(inAttributes ? CountSite.InAttribute(node, "ends", entry, input, 0, to) : CountSite.InInput(node, 2, entry, input, 0, to));
        flow.SetLayout(node.Outputs[0], input.Cut(from, to));
    }

    public double Ratio(RatioContext ctx) => ctx.PairRatio();
}
