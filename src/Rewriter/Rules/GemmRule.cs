using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// Gemm Y = A·B + C with a constant B: the features of A (its axis 1, possibly channels × H·W after a
/// flatten) are B's K axis (axis 0, or 1 with transB); a new set of N outputs is B's other axis and C's last.
/// </summary>
internal sealed class GemmRule : ILayerRule
{
    public static readonly GemmRule Instance = new();

    /// <summary>B is K × N, or N × K with transB.</summary>
    public LayerWeight? Weight(Node node, long[] weightDims)
    {
        if (weightDims.Length != 2) return null;
        bool transB = node.GetInt("transB", 0) != 0;
        int kAxis = transB ? 1 : 0, nAxis = 1 - kAxis;
        return new LayerWeight(OutputAxis: nAxis, InputAxis: kAxis, Groups: 1, weightDims[nAxis], weightDims[kAxis], BiasInput: 2);
    }

    /// <summary>M·N·K; K from B, or from A (its axis 1, or 0 with transA) when B is computed.</summary>
    public long Macs(Node node, long[]? weightDims, Func<string, long[]?> shape)
    {
        if (shape(node.Outputs[0]) is not { } output) return 0;
        long k = weightDims is not null ? Weight(node, weightDims)?.Inputs ?? 0
            : shape(node.Input(0)) is { } a ? a[node.GetInt("transA", 0) != 0 ? 0 : 1] : 0;
        return ModelCost.Product(output) * k;
    }

    public void Propagate(ChannelFlow flow, Node node)
    {
        var input = flow.Layout(node.Input(0));
        if (RuleHelpers.MatrixWeight(flow, node, why: "has a computed weight") is not { } weight) return;
        var layout = Weight(node, weight.Tensor.Dims)!;
        int kAxis = layout.InputAxis, nAxis = layout.OutputAxis;
        int outChannels = (int)layout.Outputs;
        if (input is not null)
        {
            if (node.GetInt("transA", 0) != 0 || input.Rank != 2 || input.Axis != 1)
                flow.Freeze(input, $"{node} reads channels laid out as {input}" + (node.GetInt("transA", 0) != 0 ? " with transA" : ""));
            else flow.AddTensorSite(node, 1, kAxis, input, SiteRole.ConsumerWeight);
        }
        var output = flow.NewChannels(node, outChannels, 2, 1);
        flow.AddTensorSite(node, 1, nAxis, output, SiteRole.ProducerWeight);
        string bias = node.Input(2);
        if (bias.Length > 0)
        {
            var c = flow.Shape(bias);
            // C broadcasts to [M, N]: only a C whose last dim is N carries per-output values to slice.
            if (c is null || c.Length == 0 || c[^1] == 1) { if (c is null) flow.Freeze(output, $"{node} has a bias of unknown shape"); }
            else if (flow.Graph.ResolveWeight(bias) is null) flow.Freeze(output, $"{node} has a computed bias");
            else flow.AddTensorSite(node, 2, c.Length - 1, output, SiteRole.ProducerBias);
        }
        flow.SetLayout(node.Outputs[0], output);
    }

    public double Ratio(RatioContext ctx) => RuleHelpers.ProducerRatio(ctx, 1, 2);
}
