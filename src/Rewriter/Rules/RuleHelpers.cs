using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

internal static class RuleHelpers
{
    /// <summary>The constant float matrix a Gemm or MatMul reads as input 1; null, with the node's inputs frozen
    /// (<paramref name="why"/> says so), when the weight is computed or not a matrix.</summary>
    public static WeightRef? MatrixWeight(ChannelFlow flow, Node node, string why)
    {
        var weight = flow.Graph.ResolveWeight(node.Input(1));
        if (weight is { Tensor: { IsFloating: true, Rank: 2 } }) return weight;
        flow.FreezeInputs(node, $"{node} {why}");
        return null;
    }

    /// <summary>A possibly negative axis made absolute; -1 when outside the rank.</summary>
    public static int NormalizeAxis(long axis, int rank)
    {
        long a = axis < 0 ? axis + rank : axis;
        return a >= 0 && a < rank ? (int)a : -1;
    }

    /// <summary>The node's axes: the `axes` attribute (older opsets) or the constant at <paramref name="inputIndex"/>; null when absent, empty array when computed.</summary>
    public static long[]? Axes(ChannelFlow flow, Node node, int inputIndex)
    {
        if (node.GetInts("axes") is { } attr) return attr;
        string input = node.Input(inputIndex);
        if (input.Length == 0) return null;
        return flow.ConstantInts(input) ?? [];
    }

    public static void PassThrough(ChannelFlow flow, Node node, ChannelLayout layout)
    {
        foreach (var output in node.Outputs) flow.SetLayout(output, layout);
    }

    /// <summary>The ratio of a filters producer: rows j and i of its weight (and bias) must be proportional; the node must not also read the group.</summary>
    public static double ProducerRatio(RatioContext ctx, int weightInput, int biasInput)
    {
        for (int k = 0; k < ctx.Node.Inputs.Count; k++)
            if (ctx.InputRatio(k) is not null) return double.NaN;
        if (ctx.Slices(weightInput) is not { } w) return double.NaN;
        double r = Proportion.Of(w.J, w.I);
        if (double.IsNaN(r)) return r;
        if (biasInput >= 0 && ctx.Node.Input(biasInput).Length > 0)
        {
            if (ctx.Slices(biasInput) is not { } b || !Proportion.Holds(b.J, b.I, r)) return double.NaN;
        }
        return r;
    }

    /// <summary>The ratio after a depthwise filter: input ratio times the filters' ratio; the bias must follow.</summary>
    public static double DepthwiseRatio(RatioContext ctx, int weightInput, int biasInput)
    {
        if (ctx.InputRatio(0) is not { } r || double.IsNaN(r) || ctx.Slices(weightInput) is not { } w) return double.NaN;
        double c = Proportion.Of(w.J, w.I);
        double result = r * c;
        if (double.IsNaN(result)) return result;
        if (biasInput >= 0 && ctx.Node.Input(biasInput).Length > 0)
        {
            if (ctx.Slices(biasInput) is not { } b || !Proportion.Holds(b.J, b.I, result)) return double.NaN;
        }
        return result;
    }
}
