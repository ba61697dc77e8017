using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// The one table of operator rules. Supporting a new operator is one rule file and one line here.
/// Operators not listed have no rule: channels reaching them are frozen. A weight-bearing operator's rule
/// also implements <see cref="ILayerRule"/> (weight axes, MACs: what costs, compensation and calibration
/// read through <see cref="Layers"/>); a rule whose nodes can be per-channel affine maps implements
/// <see cref="IAffineRule"/> (what <see cref="AffineChain"/> follows).
/// </summary>
internal static class OperatorRules
{
    private static readonly Dictionary<string, IOperatorRule> Table = new(StringComparer.Ordinal)
    {
        // Producers: create channel sets; also consume their input channels.
        ["Conv"] = ConvolutionRule.Conv,
        ["ConvTranspose"] = ConvolutionRule.ConvTranspose,
        ["Gemm"] = GemmRule.Instance,
        ["MatMul"] = MatMulRule.Instance,

        // Per-channel affine.
        ["BatchNormalization"] = NormalizationRule.Instance,
        ["InstanceNormalization"] = NormalizationRule.Instance,

        // Channel-wise functions and spatial ops: output channels are the input's.
        ["Relu"] = PointwiseRule.Homogeneous,
        ["LeakyRelu"] = PointwiseRule.Homogeneous,
        ["Abs"] = PointwiseRule.Homogeneous,
        ["Neg"] = PointwiseRule.Homogeneous,
        ["Identity"] = PointwiseRule.Homogeneous,
        ["Dropout"] = PointwiseRule.Homogeneous,
        ["Cast"] = PointwiseRule.Homogeneous,
        ["MaxPool"] = PointwiseRule.Spatial,
        ["AveragePool"] = PointwiseRule.Spatial,
        ["LpPool"] = PointwiseRule.Spatial,
        ["GlobalAveragePool"] = PointwiseRule.Spatial,
        ["GlobalMaxPool"] = PointwiseRule.Spatial,
        ["GlobalLpPool"] = PointwiseRule.Spatial,
        ["Clip"] = PointwiseRule.Nonlinear,
        ["Sigmoid"] = PointwiseRule.Nonlinear,
        ["HardSigmoid"] = PointwiseRule.Nonlinear,
        ["HardSwish"] = PointwiseRule.Nonlinear,
        ["Tanh"] = PointwiseRule.Nonlinear,
        ["Elu"] = PointwiseRule.Nonlinear,
        ["Selu"] = PointwiseRule.Nonlinear,
        ["Celu"] = PointwiseRule.Nonlinear,
        ["Gelu"] = PointwiseRule.Nonlinear,
        ["Mish"] = PointwiseRule.Nonlinear,
        ["Softplus"] = PointwiseRule.Nonlinear,
        ["Softsign"] = PointwiseRule.Nonlinear,
        ["ThresholdedRelu"] = PointwiseRule.Nonlinear,
        ["Erf"] = PointwiseRule.Nonlinear,
        ["Exp"] = PointwiseRule.Nonlinear,
        ["Log"] = PointwiseRule.Nonlinear,
        ["Sqrt"] = PointwiseRule.Nonlinear,
        ["Reciprocal"] = PointwiseRule.Nonlinear,
        ["Floor"] = PointwiseRule.Nonlinear,
        ["Ceil"] = PointwiseRule.Nonlinear,
        ["Round"] = PointwiseRule.Nonlinear,
        ["Sign"] = PointwiseRule.Nonlinear,
        ["Sin"] = PointwiseRule.Nonlinear,
        ["Cos"] = PointwiseRule.Nonlinear,

        // Element-wise with broadcasting: activations couple, per-channel constants are sliced.
        ["Add"] = ElementwiseRule.Instance,
        ["Sub"] = ElementwiseRule.Instance,
        ["Mul"] = ElementwiseRule.Instance,
        ["Div"] = ElementwiseRule.Instance,
        ["Max"] = ElementwiseRule.Instance,
        ["Min"] = ElementwiseRule.Instance,
        ["Sum"] = ElementwiseRule.Instance,
        ["Mean"] = ElementwiseRule.Instance,
        ["PRelu"] = ElementwiseRule.Instance,

        // Layout ops.
        ["Concat"] = ConcatRule.Instance,
        ["Split"] = SplitRule.Instance,
        ["Slice"] = SliceRule.Instance,
        ["Flatten"] = FlattenRule.Instance,
        ["Reshape"] = ReshapeRule.Instance,
        ["Squeeze"] = SqueezeRule.Instance,
        ["Unsqueeze"] = SqueezeRule.Instance,
        ["Transpose"] = TransposeRule.Instance,
        ["Pad"] = PadRule.Instance,
        ["Resize"] = ResizeRule.Instance,
        ["Upsample"] = ResizeRule.Instance,
        ["ReduceMean"] = ReduceRule.Instance,
        ["ReduceMax"] = ReduceRule.Instance,
        ["ReduceMin"] = ReduceRule.Instance,
        ["ReduceSum"] = ReduceRule.Instance,
        ["ReduceL1"] = ReduceRule.Instance,
        ["ReduceL2"] = ReduceRule.Instance,
        ["Softmax"] = SoftmaxRule.Instance,
        ["LogSoftmax"] = SoftmaxRule.Instance,

        // Reads only the dims; checks that the channel count it reports is used safely.
        ["Shape"] = ShapeRule.Instance,
    };

    /// <summary>The rule for a node, or null (custom domain, unlisted operator).</summary>
    public static IOperatorRule? For(Node node) => node.IsStandard ? Table.GetValueOrDefault(node.OpType) : null;

    public static IReadOnlyCollection<string> SupportedOperators => Table.Keys;
}
