using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>Transpose moves the channel axis to where the permutation puts it (NCHW → NHWC before a MatMul).</summary>
internal sealed class TransposeRule : IOperatorRule
{
    public static readonly TransposeRule Instance = new();

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        long[] perm = node.GetInts("perm") ?? [.. Enumerable.Range(0, input.Rank).Reverse().Select(d => (long)d)];
        int axis = Array.IndexOf(perm, (long)input.Axis);
        if (perm.Length != input.Rank || axis < 0 || !input.IsPlain)
        {
            flow.Freeze(input, $"{node} permutes a tensor laid out as {input}");
            return;
        }
        flow.SetLayout(node.Outputs[0], input.WithAxis(input.Rank, axis));
    }

    public double Ratio(RatioContext ctx) => ctx.PairRatio();
}
