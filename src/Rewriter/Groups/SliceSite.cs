using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>What a sliced tensor axis means; merging and redundancy injection treat each role differently.</summary>
public enum SiteRole
{
    /// <summary>Output-channel axis of a Conv/ConvTranspose/Gemm/MatMul weight: the group's filters.</summary>
    ProducerWeight,
    ProducerBias,
    /// <summary>Per-channel filter of a depthwise conv whose input and output channels are the group.</summary>
    DepthwiseWeight,
    DepthwiseBias,
    /// <summary>Input-channel axis of a weight that reads the channels (the next layer).</summary>
    ConsumerWeight,
    /// <summary>Per-channel multiplicative parameter: BatchNorm scale and variance, Mul/Div constant, PRelu slope.</summary>
    ChannelGain,
    /// <summary>Per-channel additive parameter: BatchNorm bias and mean, Add/Sub constant, Max/Min bound.</summary>
    ChannelOffset,
}

/// <summary>One place the rewriter edits when channels of the groups in <see cref="Layout"/> are removed.</summary>
public abstract class SliceSite(Node node, ChannelLayout layout)
{
    /// <summary>The node whose input or attribute is edited.</summary>
    public Node Node { get; } = node;

    /// <summary>Which channels (of which groups) lie along the edited axis or are counted.</summary>
    public ChannelLayout Layout { get; internal set; } = layout;
}

/// <summary>
/// A stored tensor (initializer or Constant node, possibly behind Identity/Cast) read by
/// <see cref="SliceSite.Node"/> at <see cref="InputIndex"/>, sliced along <see cref="Axis"/>.
/// </summary>
public sealed class TensorSite(Node node, int inputIndex, WeightRef weight, int axis, ChannelLayout layout, SiteRole role)
    : SliceSite(node, layout)
{
    public int InputIndex { get; } = inputIndex;
    public string Value => Node.Input(InputIndex);
    public WeightRef Weight { get; } = weight;
    public int Axis { get; } = axis;
    public SiteRole Role { get; } = role;

    public override string ToString() => $"{Role} {Weight.Tensor.Name}[axis {Axis}] of {Node}";
}

/// <summary>
/// The input-channel axis of a grouped conv's weight (axis 1 of C_out × C_in/group × k…): output row o belongs to
/// conv group b = o / (C_out/<see cref="Blocks"/>) and reads input block b of <see cref="SliceSite.Layout"/> (one whole,
/// tied channel group). Every block keeps the same count (<see cref="ChannelGroup.Blocks"/>), so the axis shrinks to
/// that count, each row keeping its own block's channels. Not a <see cref="TensorSite"/>: positions along the axis
/// are block-relative, so code that reads a channel's slice of a tensor does not see it.
/// </summary>
public sealed class GroupedInputSite(Node node, int inputIndex, WeightRef weight, int axis, int outputAxis, int blocks, ChannelLayout layout)
    : SliceSite(node, layout)
{
    public int InputIndex { get; } = inputIndex;
    public WeightRef Weight { get; } = weight;
    public int Axis { get; } = axis;

    /// <summary>The weight axis whose position says which conv group a slab belongs to.</summary>
    public int OutputAxis { get; } = outputAxis;

    public int Blocks { get; } = blocks;

    public override string ToString() => $"grouped input {Weight.Tensor.Name}[axis {Axis}, {Blocks} groups] of {Node}";
}

/// <summary>
/// An integer that states a channel count: a depthwise conv's group, a Split size, a Reshape dim, a Resize
/// size, a Slice bound. The new value is (kept channels of <see cref="SliceSite.Layout"/> in [From, To)) ×
/// <see cref="Multiplier"/>. It lives in attribute <see cref="Attribute"/> or in the constant at input
/// <see cref="InputIndex"/>; <see cref="Element"/> is the index in the int list (-1: a scalar int attribute).
/// </summary>
public sealed class CountSite : SliceSite
{
    private CountSite(Node node, ChannelLayout layout, string? attribute, int inputIndex, int element, int from, int to, long multiplier, long[]? computed = null)
        : base(node, layout)
    {
        if (from < 0 || to < from || to > layout.Channels)
            throw new ArgumentException($"count range [{from},{to}) is outside the layout's {layout.Channels} channels");
        Attribute = attribute;
        InputIndex = inputIndex;
        Element = element;
        From = from;
        To = to;
        Multiplier = multiplier;
        Computed = computed;
    }

    public static CountSite InAttribute(Node node, string attribute, int element, ChannelLayout layout, int from, int to, long multiplier = 1) =>
        new(node, layout, attribute, -1, element, from, to, multiplier);

    public static CountSite InInput(Node node, int inputIndex, int element, ChannelLayout layout, int from, int to, long multiplier = 1) =>
        new(node, layout, null, inputIndex, element, from, to, multiplier);

    /// <summary>A count in an input computed from the shape (<paramref name="values"/>: what it evaluates to): the rewrite gives the node a constant instead.</summary>
    public static CountSite InComputedInput(Node node, int inputIndex, int element, ChannelLayout layout, int from, int to, long[] values) =>
        new(node, layout, null, inputIndex, element, from, to, 1, values);

    public string? Attribute { get; }
    public int InputIndex { get; }
    public int Element { get; }
    public int From { get; }
    public int To { get; }
    public long Multiplier { get; }

    /// <summary>For an input computed from the shape: its values in the unpruned graph; null for a stored count.</summary>
    public long[]? Computed { get; }

    public override string ToString() =>
        $"count {(Attribute is { } a ? $"attribute {a}" : $"input {InputIndex}")}[{Element}] of {Node} = kept[{From},{To})×{Multiplier}";
}
