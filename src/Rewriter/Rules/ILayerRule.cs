using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// A rule for a weight-bearing operator (Conv, ConvTranspose, Gemm, MatMul): besides the channel flow it is
/// the one place that knows the layout of the layer's weight and what the layer costs.
/// </summary>
internal interface ILayerRule : IOperatorRule
{
    /// <summary>The weight's layout at <paramref name="weightDims"/>, or null when the node's weight is not one this rule understands (wrong rank).</summary>
    LayerWeight? Weight(Node node, long[] weightDims);

    /// <summary>
    /// Multiply-accumulates at concrete shapes. <paramref name="weightDims"/> are the weight's dims (null when
    /// unknown); <paramref name="shape"/> gives a value's concrete dims or null. 0 when a needed shape is missing.
    /// </summary>
    long Macs(Node node, long[]? weightDims, Func<string, long[]?> shape);
}
