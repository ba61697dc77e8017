namespace OnnxSlim.GraphIO;

/// <summary>
/// Where a constant input really comes from: the stored tensor, plus the pass-through nodes
/// (Identity, Cast) between it and the consumer. Slicing the tensor changes every reader of it.
/// </summary>
public sealed record WeightRef(Tensor Tensor, IReadOnlyList<Node> PassThrough, Node? ConstantNode);
