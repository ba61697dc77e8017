namespace OnnxSlim.Rewriter;

/// <summary>
/// How a weight-bearing layer's weight (its input 1) is laid out, at given weight dims: the axis that indexes
/// its output channels, the axis that indexes its input channels (one conv group's worth for a grouped conv),
/// the group count, the resulting output and input channel counts, and the input holding its bias (-1: none).
/// Produced by the layer's rule (<see cref="Layers.Weight"/>), so no other code re-derives transB or the
/// ConvTranspose layout.
/// </summary>
public sealed record LayerWeight(int OutputAxis, int InputAxis, int Groups, long Outputs, long Inputs, int BiasInput)
{
    /// <summary>Input channels one output reads: all of them, or one conv group's.</summary>
    public long InputsPerGroup => Inputs / Groups;

    /// <summary>Output channels of one conv group.</summary>
    public long OutputsPerGroup => Outputs / Groups;
}
