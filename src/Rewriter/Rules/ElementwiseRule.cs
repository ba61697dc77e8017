using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Element-wise ops with multidirectional broadcasting (Add, Sub, Mul, Div, Max, Min, Sum, Mean, PRelu).
/// Operands are aligned from the last axis. Activations that carry channels on the same output axis are
/// coupled (residual Add, the SE gate's [N,C,1,1] × [N,C,H,W] Mul). A one-channel activation broadcast
/// over the others is frozen. A constant with a size-C dim on that axis is sliced ([C], [C,1,1],
/// [1,C,1,1]); constants of size 1 there broadcast and stay as they are. A computed operand with C
/// channels that we cannot follow freezes the channels.
/// </summary>
internal sealed class ElementwiseRule : IAffineRule
{
    public static readonly ElementwiseRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        var tracked = flow.TrackedInputs(node).ToList();
        if (tracked.Count == 0) return;
        var ranks = new int[node.Inputs.Count];
        for (int k = 0; k < node.Inputs.Count; k++)
        {
            if (node.Inputs[k].Length == 0) { ranks[k] = 0; continue; }
            if (flow.Rank(node.Inputs[k]) is not { } r)
            {
                flow.FreezeInputs(node, $"{node} has an operand of unknown shape ('{node.Inputs[k]}')");
                return;
            }
            ranks[k] = r;
        }
        int rank = ranks.Max();
        int axis = rank - tracked[0].Layout.Rank + tracked[0].Layout.Axis;
        if (tracked.Any(t => rank - t.Layout.Rank + t.Layout.Axis != axis))
        {
            flow.FreezeInputs(node, $"{node} combines channels on different axes");
            return;
        }
        var main = tracked.MaxBy(t => t.Layout.Channels).Layout;
        foreach (var (_, layout) in tracked)
        {
            if (layout.Channels == 1 && main.Channels > 1 && layout.IsPlain) flow.Freeze(layout, $"{node} broadcasts one channel over {main.Channels}");
            else flow.Unite(main, layout, node.ToString());
        }
        var output = main.WithAxis(rank, axis);
        SiteRole role = node.OpType is "Mul" or "Div" or "PRelu" ? SiteRole.ChannelGain : SiteRole.ChannelOffset;
        for (int k = 0; k < node.Inputs.Count; k++)
        {
            string input = node.Inputs[k];
            if (input.Length == 0 || flow.Layout(input) is not null) continue;
            long[] shape = flow.Shape(input)!;
            int position = axis - (rank - shape.Length);
            long size = position < 0 ? 1 : shape[position];
            if (size == 1) continue;
            if (size < 0) { flow.Freeze(output, $"{node} has an operand of unknown size on the channel axis ('{input}')"); continue; }
            if (flow.Graph.ResolveWeight(input) is null) { flow.Freeze(output, $"{node} combines the channels with a computed tensor ('{input}')"); continue; }
            flow.AddTensorSite(node, k, position, output, role);
        }
        flow.SetLayout(node.Outputs[0], output);
    }

    /// <summary>
    /// Mul, Div (x / c only), Add and Sub with a stored constant as the other operand are per-channel affine maps.
    /// An Add or Sub whose constant is not known per channel still has a known scale.
    /// </summary>
    public AffineStep? Affine(Graph graph, Node node, int input, ChannelValues values)
    {
        if (node.Inputs.Count != 2) return null;
        int k = 1 - input;
        if (node.Input(k) == node.Input(input) || graph.ResolveWeight(node.Input(k)) is null) return null;
        var c = values(node, k);
        return node.OpType switch
        {
            "Mul" when c is not null => new AffineStep(node, input, AffineKind.Multiply, c),
            "Div" when c is not null && input == 0 => new AffineStep(node, input, AffineKind.Divide, c),
            "Add" => new AffineStep(node, input, AffineKind.Add, c),
            "Sub" => new AffineStep(node, input, input == 0 ? AffineKind.Subtract : AffineKind.SubtractFrom, c),
            _ => null,
        };
    }

    public double Ratio(RatioContext ctx)
    {
        string op = ctx.Node.OpType;
        var operands = new List<Operand>();
        for (int k = 0; k < ctx.Node.Inputs.Count; k++)
        {
            if (ctx.Node.Inputs[k].Length == 0) continue;
            if (ctx.InputRatio(k) is { } r) operands.Add(new Operand(r, null, null));
            else if (ctx.Slices(k) is { } c) operands.Add(new Operand(null, c.J, c.I));
            else operands.Add(new Operand(null, null, null)); // the same (broadcast) values for j and i
        }
        if (operands.Any(o => o.Ratio is { } r && double.IsNaN(r))) return double.NaN;
        switch (op)
        {
            case "Mul":
            {
                double ratio = 1;
                foreach (var o in operands) ratio *= o.Factor();
                return ratio;
            }
            case "Div":
                return operands.Count == 2 ? operands[0].Factor() / operands[1].Factor() : double.NaN;
            case "PRelu":
            {
                // PRelu(r·x) = r·PRelu(x) for r > 0 when both channels have the same slope.
                if (operands.Count != 2 || operands[1].J is not { } sj || !Proportion.Holds(sj, operands[1].I!, 1)) return double.NaN;
                return Proportion.Positive(operands[0].Ratio);
            }
            default:
            {
                // Add, Sub, Sum, Mean (linear) and Max, Min (positively homogeneous): every operand must scale by the same ratio.
                double ratio = operands.First(o => o.Ratio is not null).Ratio!.Value;
                if (op is "Max" or "Min" && ratio <= 0) return double.NaN;
                foreach (var o in operands)
                {
                    bool ok = o.Ratio is { } r ? Proportion.Near(r, ratio)
                        : o.J is { } j ? Proportion.Holds(j, o.I!, ratio)
                        : Proportion.Near(ratio, 1);
                    if (!ok) return double.NaN;
                }
                return ratio;
            }
        }
    }

    /// <summary>An operand seen from channels j and i: a ratio (it carries them), a constant's values at both, or neither (identical values).</summary>
    private readonly record struct Operand(double? Ratio, float[]? J, float[]? I)
    {
        public double Factor() => Ratio ?? (J is { } j ? Proportion.Of(j, I!) : 1);
    }
}
