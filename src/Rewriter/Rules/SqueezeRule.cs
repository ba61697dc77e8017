using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>Squeeze / Unsqueeze of other axes move the channel axis; squeezing the channel axis itself is frozen.</summary>
internal sealed class SqueezeRule : IOperatorRule
{
    public static readonly SqueezeRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        long[]? axes = RuleHelpers.Axes(flow, node, 1);
        bool squeeze = node.OpType == "Squeeze";
        if (axes is null && squeeze)
        {
            // No axes: every size-1 dim goes, which needs the shape.
            var shape = flow.Shape(node.Input(0));
            if (shape is null || shape.Length != input.Rank || shape.Any(d => d < 0))
            {
                flow.Freeze(input, $"{node} squeezes unknown dims");
                return;
            }
            axes = [.. Enumerable.Range(0, shape.Length).Where(d => shape[d] == 1).Select(d => (long)d)];
        }
        if (axes is null || axes.Length == 0 && node.Input(1).Length > 0)
        {
            flow.Freeze(input, $"{node} has computed axes");
            return;
        }
        int outRank = squeeze ? input.Rank - axes.Length : input.Rank + axes.Length;
        var normalized = axes.Select(a => RuleHelpers.NormalizeAxis(a, squeeze ? input.Rank : outRank)).ToArray();
        if (normalized.Any(a => a < 0))
        {
            flow.Freeze(input, $"{node} has axes outside the rank");
            return;
        }
        int axis;
        if (squeeze)
        {
            if (normalized.Contains(input.Axis))
            {
                flow.Freeze(input, $"{node} squeezes the channel axis");
                return;
            }
            axis = input.Axis - normalized.Count(a => a < input.Axis);
        }
        else
        {
            // Walk the output dims: inserted ones are skipped, the others are the input's in order.
            axis = -1;
            for (int d = 0, source = 0; d < outRank; d++)
            {
                if (normalized.Contains(d)) continue;
                if (source++ == input.Axis) { axis = d; break; }
            }
        }
        flow.SetLayout(node.Outputs[0], input.WithAxis(outRank, axis));
    }

    public double Ratio(RatioContext ctx) => ctx.PairRatio();
}
