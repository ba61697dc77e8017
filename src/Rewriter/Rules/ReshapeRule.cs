using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Reshape that keeps the leading dims and merges the channel axis with the dims after it, e.g.
/// [N, C, 1, 1] → [N, C] or [N, C, H, W] → [N, C·H·W] or [N, C, H·W]. Works on the concrete input and
/// output shapes (probed or declared). A shape entry that states the merged size literally becomes the
/// kept count × inner size; -1 (inferred) and 0 (copied, when it copies the channel dim itself) need no
/// edit. Reshapes that split channels (channel shuffle) or mix them into the batch, computed shapes and
/// unknown shapes are frozen.
/// </summary>
internal sealed class ReshapeRule : IOperatorRule
{
    public static readonly ReshapeRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        if (flow.Layout(node.Input(1)) is not null || flow.ConstantInts(node.Input(1)) is not { } target)
        {
            flow.Freeze(input, $"{node} has a computed shape");
            return;
        }
        long[]? inShape = flow.Shape(node.Input(0))?.ToArray(), outShape = flow.Shape(node.Outputs[0])?.ToArray();
        // A dynamic batch on both sides (declared shapes) is the same symbol.
        if (inShape is { Length: > 0 } && outShape is { Length: > 0 } && inShape[0] < 0 && outShape[0] < 0) inShape[0] = outShape[0] = 1;
        if (inShape is null || outShape is null || inShape.Length != input.Rank || outShape.Length != target.Length
            || inShape.Skip(input.Axis).Any(d => d <= 0) || outShape.Any(d => d < 0))
        {
            flow.Freeze(input, $"{node} reshapes channels with unknown shapes");
            return;
        }
        long leading = 1;
        for (int d = 0; d < input.Axis; d++) leading *= Math.Max(inShape[d], 1);
        // b: the output dim where the channels start: the leading dims must be exactly the input's (size-1 dims skipped).
        int b = -1;
        long prefix = 1;
        for (int d = 0; d < outShape.Length && prefix <= leading; d++)
        {
            if (prefix == leading && (outShape[d] != 1 || d == outShape.Length - 1)) { b = d; break; }
            prefix *= outShape[d];
        }
        if (b < 0)
        {
            flow.Freeze(input, $"{node} mixes channels with the leading dims");
            return;
        }
        if (outShape[b] < inShape[input.Axis])
        {
            flow.Freeze(input, $"{node} splits channels across dims");
            return;
        }
        // The channel dim must be merged with whole following dims: out[b] = in[a]·in[a+1]·…·in[a+m].
        long merged = inShape[input.Axis];
        for (int d = input.Axis + 1; merged < outShape[b] && d < inShape.Length; d++) merged *= inShape[d];
        if (merged != outShape[b])
        {
            flow.Freeze(input, $"{node} splits channels across dims");
            return;
        }
        long factor = outShape[b] / inShape[input.Axis];
        var output = input.TimesInner(factor, outShape.Length, b);
        long entry = target[b];
        bool copiesChannels = entry == 0 && node.GetInt("allowzero", 0) == 0 && b == input.Axis && factor == 1;
        for (int d = 0; d < target.Length; d++)
        {
            // A 0 elsewhere that copies the input's channel dim would keep the old count.
            if (d != b && target[d] == 0 && d == input.Axis)
            {
                flow.Freeze(input, $"{node} copies the channel count into dim {d}");
                return;
            }
        }
        if (entry > 0)
        {
            if (!input.InnerKnown || entry != input.Extent * factor || input.Segments.Any(s => s.Inner != input.Segments[0].Inner))
            {
                flow.Freeze(input, $"{node} states {entry} for {input.Channels} channels");
                return;
            }
            flow.AddCountSite(CountSite.InInput(node, 1, b, input, 0, input.Channels, entry / input.Channels));
        }
        else if (entry == 0 && !copiesChannels)
        {
            flow.Freeze(input, $"{node} copies a dim into the channel position");
            return;
        }
        flow.SetLayout(node.Outputs[0], output);
    }

    public double Ratio(RatioContext ctx) => ctx.PairRatio();
}
