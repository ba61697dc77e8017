using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>Pad of the spatial axes only (constant `pads` attribute or input); padding the channel axis is frozen.</summary>
internal sealed class PadRule : IOperatorRule
{
    public static readonly PadRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        long[]? pads = node.GetInts("pads") ?? flow.ConstantInts(node.Input(1));
        long[]? axes = node.Input(3).Length > 0 ? flow.ConstantInts(node.Input(3)) : null;
        if (pads is null || (node.Input(3).Length > 0 && axes is null))
        {
            flow.Freeze(input, $"{node} has computed pads");
            return;
        }
        axes ??= [.. Enumerable.Range(0, pads.Length / 2).Select(d => (long)d)];
        int entry = Array.FindIndex(axes, a => RuleHelpers.NormalizeAxis(a, input.Rank) == input.Axis);
        if (entry >= 0 && (pads[entry] != 0 || pads[entry + axes.Length] != 0))
        {
            flow.Freeze(input, $"{node} pads the channel axis");
            return;
        }
        flow.SetLayout(node.Outputs[0], input);
    }

    public double Ratio(RatioContext ctx)
    {
        // Padding with zeros (or replicating edges) keeps r·x = r·pad(x); another constant only keeps copies.
        string mode = ctx.Node.GetString("mode") ?? "constant";
        bool zeroFill = mode != "constant" || ctx.Node.GetFloat("value", 0) == 0 && (ctx.Slices(2) is not { } v || v.J.All(x => x == 0));
        return zeroFill ? Proportion.Positive(ctx.InputRatio(0)) : Proportion.Unit(ctx.InputRatio(0));
    }
}
