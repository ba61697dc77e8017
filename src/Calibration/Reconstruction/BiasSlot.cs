using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>Where a fitted bias (the mean-shift correction) is written.</summary>
internal enum BiasKind
{
    /// <summary>Nowhere: the fit has no bias column (a computed bias, or a MatMul without a following constant Add).</summary>
    None,
    /// <summary>The node's own bias tensor (Conv input 2, Gemm C), overwritten.</summary>
    Existing,
    /// <summary>A new initializer attached as the node's bias input (there was none, or it is shared beyond these nodes).</summary>
    New,
    /// <summary>The constant of the Add that follows a MatMul: the fitted bias is added to it.</summary>
    FollowingAdd,
}

/// <summary>A bias destination; <see cref="Tensor"/> is set for <see cref="BiasKind.Existing"/> and <see cref="BiasKind.FollowingAdd"/>.</summary>
internal sealed record BiasSlot(BiasKind Kind, WeightRef? Tensor = null, int NewDataType = DataType.Float)
{
    public static BiasSlot None { get; } = new(BiasKind.None);
    public bool Fitted => Kind != BiasKind.None;
}
