using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// A rule for an operator that can be a per-channel affine map of one input (BatchNormalization at inference,
/// Mul/Div/Add/Sub by a constant): the one place that says whether a node is one and with which parameters.
/// </summary>
internal interface IAffineRule : IOperatorRule
{
    /// <summary>
    /// The node as y = scale·x + offset per channel of its input <paramref name="input"/>, with parameters read
    /// through <paramref name="values"/>; null when it is not such a map (a computed operand, x / c reversed, a
    /// parameter that is not known per channel where the scale needs it).
    /// </summary>
    AffineStep? Affine(Graph graph, Node node, int input, ChannelValues values);
}
