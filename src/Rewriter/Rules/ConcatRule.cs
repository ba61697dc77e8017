using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Concat on the channel axis lays its inputs' segments side by side (DenseNet, GoogLeNet, FPN heads):
/// the consumer sees each group at an offset, nothing in the Concat itself changes. On another axis the
/// inputs must hold the same channels and are coupled. Every input must be tracked: an input whose
/// channels we do not follow would keep a fixed count while the others shrink.
/// </summary>
internal sealed class ConcatRule : IOperatorRule
{
    public static readonly ConcatRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        var tracked = flow.TrackedInputs(node).ToList();
        if (tracked.Count == 0) return;
        var first = tracked[0].Layout;
        int axis = RuleHelpers.NormalizeAxis(node.GetInt("axis", 1), first.Rank);
        if (tracked.Count != node.Inputs.Count(i => i.Length > 0))
        {
            flow.FreezeInputs(node, $"{node} concatenates channels with an untracked tensor");
            return;
        }
        if (tracked.Any(t => t.Layout.Rank != first.Rank || t.Layout.Axis != first.Axis))
        {
            flow.FreezeInputs(node, $"{node} concatenates tensors with channels on different axes");
            return;
        }
        if (axis == first.Axis)
        {
            flow.SetLayout(node.Outputs[0], ChannelLayout.Concat(first.Rank, first.Axis, tracked.Select(t => t.Layout)));
            return;
        }
        foreach (var (_, layout) in tracked.Skip(1)) flow.Unite(first, layout, node.ToString());
        flow.SetLayout(node.Outputs[0], first);
    }

    // Concatenation moves channels, it does not change them.
    public double Ratio(RatioContext ctx) => ctx.PairRatio();
}
