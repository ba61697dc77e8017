using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Resize / Upsample scale the spatial axes (FPN top-down path). Constant scales must be 1 on the channel
/// axis; constant sizes state the channel count, which becomes the kept count. Computed sizes are accepted
/// only in the exporter's form Concat(Slice(Shape(X), 0, ≥axis+1), spatial sizes), where the channel
/// count is read from the resized tensor itself and so follows the pruning.
/// </summary>
internal sealed class ResizeRule : IOperatorRule
{
    public static readonly ResizeRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        if (!input.IsPlain || node.Inputs.Skip(1).Any(i => flow.Layout(i) is not null))
        {
            flow.FreezeInputs(node, $"{node} resizes a tensor laid out as {input}");
            return;
        }
        bool upsample = node.OpType == "Upsample";
        string scales = upsample || node.Inputs.Count == 2 ? node.Input(1) : node.Input(2);
        string sizes = upsample ? "" : node.Input(3);
        if (node.GetFloats("scales") is { Length: > 0 } scaleAttribute && !ScaleKeepsChannels(scaleAttribute, input))
        {
            flow.Freeze(input, $"{node} scales the channel axis");
            return;
        }
        if (scales.Length > 0)
        {
            var tensor = flow.Graph.Constant(scales);
            if (tensor is null) { flow.Freeze(input, $"{node} has computed scales"); return; }
            if (tensor.ElementCount > 0 && !ScaleKeepsChannels(tensor.ToFloats(), input))
            {
                flow.Freeze(input, $"{node} scales the channel axis");
                return;
            }
        }
        if (sizes.Length > 0)
        {
            if (flow.ConstantInts(sizes) is { } constant)
            {
                if (constant.Length != input.Rank || constant[input.Axis] != input.Channels)
                {
                    flow.Freeze(input, $"{node} has sizes that do not match its input");
                    return;
                }
                flow.AddCountSite(CountSite.InInput(node, 3, input.Axis, input, 0, input.Channels));
            }
            else if (!SizesFollowInput(flow, sizes, input))
            {
                flow.Freeze(input, $"{node} has computed sizes that do not come from its own input");
                return;
            }
        }
        flow.SetLayout(node.Outputs[0], input);
    }

    private static bool ScaleKeepsChannels(float[] scales, ChannelLayout input) =>
        scales.Length == input.Rank && scales[input.Axis] == 1f;

    /// <summary>sizes = [Cast] Concat(Slice(Shape(v), 0, e ≥ axis+1), …) with v carrying the same channels.</summary>
    internal static bool SizesFollowInput(ChannelFlow flow, string sizes, ChannelLayout input)
    {
        var concat = SkipCasts(flow, sizes);
        if (concat is not { OpType: "Concat" } || concat.Inputs.Count == 0) return false;
        var slice = SkipCasts(flow, concat.Inputs[0]);
        if (slice is null) return false;
        Node? shape;
        if (slice.OpType == "Shape") shape = slice;
        else
        {
            if (slice.OpType != "Slice") return false;
            long[]? starts = flow.ConstantInts(slice.Input(1)), ends = flow.ConstantInts(slice.Input(2));
            if (starts is not [0] || ends is not [var end] || end <= input.Axis) return false;
            if (slice.Input(3).Length > 0 && flow.ConstantInts(slice.Input(3)) is not [0]) return false;
            if (slice.Input(4).Length > 0 && flow.ConstantInts(slice.Input(4)) is not [1]) return false;
            shape = flow.Graph.Producer(slice.Input(0));
        }
        if (shape is not { OpType: "Shape" } || shape.GetInt("start", 0) != 0) return false;
        return flow.Layout(shape.Input(0)) is { } source && flow.SameChannels(source, input);
    }

    private static Node? SkipCasts(ChannelFlow flow, string value)
    {
        var node = flow.Graph.Producer(value);
        while (node is { OpType: "Cast" or "Identity" }) node = flow.Graph.Producer(node.Input(0));
        return node;
    }

    // Interpolation is linear in the input.
    public double Ratio(RatioContext ctx) => ctx.PairRatio();
}
