using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// One weight tensor to re-fit: the pruned graph's nodes that read it (several when exporters share one
/// initializer), their counterparts in the original graph, and where the fit's rows come from — the
/// pruned model's input of each node (features) and the original model's output of it (targets).
/// When <see cref="Pooled"/>, the node is a classifier behind a global average pool and both sides are
/// the per-position inputs of that pool (pooling and the linear map commute).
/// </summary>
internal sealed record ConsumerUnit
{
    public required string Name { get; init; }
    public required ConsumerKind Kind { get; init; }
    public required IReadOnlyList<Node> Nodes { get; init; }
    public required IReadOnlyList<Node> OriginalNodes { get; init; }

    /// <summary>Per node: the pruned graph's value holding its features.</summary>
    public required IReadOnlyList<string> FeatureValues { get; init; }

    /// <summary>Per node: the original graph's value holding its targets (its output, or the pool's input when pooled).</summary>
    public required IReadOnlyList<string> TargetValues { get; init; }

    public required bool Pooled { get; init; }
    public required WeightRef Weight { get; init; }
    public required long[] WeightDims { get; init; }
    public required BiasSlot Bias { get; init; }

    /// <summary>For each output of the pruned node, the original output it must reproduce.</summary>
    public required int[] KeptOutputs { get; init; }

    /// <summary>Conv groups (1 for Gemm/MatMul); each group is fitted on its own input channels.</summary>
    public required int Groups { get; init; }

    /// <summary>Input features per group in the pruned node (Conv: channels per group; Gemm/MatMul: K).</summary>
    public required int InputsPerGroup { get; init; }

    /// <summary>What follows the layer up to its next non-linearity (residual Add, Relu), when that refines the fit.</summary>
    public OutputChain? Chain { get; init; }

    /// <summary>
    /// The layer's output is one operand of a residual Add whose other branch is fitted later, to the sum less this
    /// layer's pruned output (<see cref="ConsumerLevels"/>): that later fit corrects whatever this one leaves.
    /// </summary>
    public bool SumFittedLater { get; init; }

    /// <summary>
    /// Outputs of the fit per stored output channel: 1, or k² for a ConvTranspose whose kernel k equals its stride (no
    /// padding). Each of its input pixels then writes one k×k block of outputs alone, so the fit's row is an input pixel
    /// and its outputs are (channel, tap) pairs, in the weight's own order; <see cref="KeptOutputs"/> and the targets
    /// count those, and the bias is shared by a channel's k² outputs.
    /// </summary>
    public int Block { get; init; } = 1;

    public int Outputs => KeptOutputs.Length;
    public int OutputsPerGroup => Outputs / Groups;
    public string OpType => Nodes[0].OpType;
}
