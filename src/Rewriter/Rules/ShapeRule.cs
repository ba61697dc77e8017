using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Shape reads dims, not values. Reading the spatial dims (Gather of another index, Slice past the channel
/// axis: anchor generators, FPN upsampling sizes) is harmless. The channel count itself may only flow into
/// a Resize's sizes for the same channels (see <see cref="ResizeRule"/>), or through integer arithmetic into
/// the channel bounds of Slices of the same tensor (torch.chunk), which the Slice rule replaces by constants;
/// any other use could bake the old count into the computation, so it freezes the channels.
/// </summary>
internal sealed class ShapeRule : IOperatorRule
{
    public static readonly ShapeRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        long rank = input.Rank;
        long start = node.GetInt("start", 0), end = node.GetInt("end", rank);
        if (start < 0) start += rank;
        if (end < 0) end += rank;
        start = Math.Clamp(start, 0, rank);
        end = Math.Clamp(end, 0, rank);
        int channelIndex = input.Axis >= start && input.Axis < end ? (int)(input.Axis - start) : -1;
        if (channelIndex < 0) return;
        foreach (var use in flow.Graph.Consumers(node.Outputs[0]))
        {
            if (ReadsOtherDims(flow, use, channelIndex) || ReachesResizeOfSameChannels(flow, use, input)
                || FeedsOnlyChannelSliceBounds(flow, use, node.Input(0), input.Axis, [])) continue;
            flow.Freeze(input, $"channel count read by {node} and used by {use}");
            return;
        }
    }

    private static bool ReadsOtherDims(ChannelFlow flow, Node use, int channelIndex)
    {
        if (use.OpType == "Gather" && use.GetInt("axis", 0) == 0 && flow.ConstantInts(use.Input(1)) is { } indices)
            return indices.All(i => i != channelIndex);
        if (use.OpType == "Slice" && flow.ConstantInts(use.Input(1)) is [var from] && flow.ConstantInts(use.Input(2)) is [var to]
            && (use.Input(3).Length == 0 || flow.ConstantInts(use.Input(3)) is [0])
            && (use.Input(4).Length == 0 || flow.ConstantInts(use.Input(4)) is [1]))
            return from > channelIndex || (to >= 0 && to <= channelIndex);
        return false;
    }

    /// <summary>
    /// Whether every path from <paramref name="node"/> through shape arithmetic ends in the start or end of a Slice
    /// of <paramref name="data"/> on the channel axis alone (bounds the Slice rule evaluates and writes as constants).
    /// </summary>
    private static bool FeedsOnlyChannelSliceBounds(ChannelFlow flow, Node node, string data, int axis, HashSet<Node> seen)
    {
        if (!ShapeArithmetic.IsArithmetic(node)) return false;
        if (!seen.Add(node)) return true;
        foreach (var output in node.Outputs)
        {
            if (flow.Graph.IsGraphOutput(output)) return false;
            foreach (var use in flow.Graph.Consumers(output))
            {
                if (use.OpType == "Slice" && use.Input(0) == data && !use.HasAttribute("starts"))
                {
                    bool boundOnly = Enumerable.Range(0, use.Inputs.Count).All(k => use.Inputs[k] != output || k is 1 or 2);
                    if (!boundOnly || use.Input(3).Length == 0 || flow.ConstantInts(use.Input(3)) is not [var a]
                        || RuleHelpers.NormalizeAxis(a, flow.Layout(data)?.Rank ?? 0) != axis) return false;
                    continue;
                }
                if (!FeedsOnlyChannelSliceBounds(flow, use, data, axis, seen)) return false;
            }
        }
        return true;
    }

    private static bool ReachesResizeOfSameChannels(ChannelFlow flow, Node use, ChannelLayout input)
    {
        if (use.OpType != "Slice") return false;
        // Follow Slice → [Cast] → Concat → [Cast] → Resize.sizes and let the Resize rule check the pattern.
        foreach (var concat in Followers(flow, use.Outputs[0]))
        {
            if (concat.OpType != "Concat") return false;
            foreach (var resize in Followers(flow, concat.Outputs[0]))
            {
                if (resize.OpType != "Resize" || resize.Input(3).Length == 0) return false;
                if (flow.Graph.Producer(resize.Input(3)) is null) return false;
                if (!ResizeRule.SizesFollowInput(flow, resize.Input(3), input)) return false;
                // The resized tensor must be the one whose shape was read (or carry the same channels).
                if (flow.Layout(resize.Input(0)) is not { } resized || !flow.SameChannels(resized, input)) return false;
            }
        }
        return true;
    }

    private static IEnumerable<Node> Followers(ChannelFlow flow, string value)
    {
        foreach (var n in flow.Graph.Consumers(value))
        {
            if (n.OpType is "Cast" or "Identity") foreach (var m in Followers(flow, n.Outputs[0])) yield return m;
            else yield return n;
        }
    }
}
