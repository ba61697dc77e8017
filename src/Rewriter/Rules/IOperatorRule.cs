using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// How channels flow through one operator family and how to slice it. A rule reads the layouts of the
/// node's inputs, sets the layouts of its outputs, couples or freezes channel sets and registers the
/// places to edit. Rules are stateless singletons listed in <see cref="OperatorRules"/>.
/// </summary>
internal interface IOperatorRule
{
    void Propagate(ChannelFlow flow, Node node);

    /// <summary>
    /// For merging: given that channel j of a group equals r·(channel i) in the node's inputs, the ratio
    /// between output channels j and i, or NaN when the node breaks the proportionality.
    /// </summary>
    double Ratio(RatioContext ctx) => double.NaN;
}
