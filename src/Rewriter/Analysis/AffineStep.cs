using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>Per channel, the values of a node's constant input (null when they are not known per channel).</summary>
public delegate double[]? ChannelValues(Node node, int input);

/// <summary>What a per-channel affine node does to the value it follows.</summary>
public enum AffineKind
{
    /// <summary>x·c</summary>
    Multiply,
    /// <summary>x / c</summary>
    Divide,
    /// <summary>x + c</summary>
    Add,
    /// <summary>x − c</summary>
    Subtract,
    /// <summary>c − x</summary>
    SubtractFrom,
    /// <summary>BatchNormalization: s·(x − μ) + β</summary>
    Normalize,
}

/// <summary>
/// One per-channel affine node after a layer, made by the node's rule (<see cref="Rules.IAffineRule"/>).
/// <see cref="Fold"/> composes it into a running y = scale·(W·x) + offset. Its values are per channel, in the
/// caller's channel order. A step whose offset is not known (an added constant not given per channel, a
/// BatchNorm without β or μ) still knows its scale.
/// </summary>
/// <param name="input">The input that carries the chain's value.</param>
/// <param name="values">c for the element-wise kinds, s = γ/√(σ² + ε) for <see cref="AffineKind.Normalize"/>; null for an Add/Sub/SubtractFrom of unknown values.</param>
public sealed class AffineStep(Node node, int input, AffineKind kind, double[]? values, double[]? mean = null, double[]? beta = null)
{
    private readonly double[]? _values = values is null && kind is AffineKind.Multiply or AffineKind.Divide or AffineKind.Normalize
        ? throw new ArgumentException($"{node}: a {kind} step needs its per-channel values", nameof(values))
        : values;
    private readonly double[]? _mean = mean, _beta = beta;

    public Node Node { get; } = node;

    /// <summary>The input that carries the chain's value.</summary>
    public int Input { get; } = input;

    public AffineKind Kind { get; } = kind;

    public bool IsNormalization => Kind == AffineKind.Normalize;

    public bool OffsetKnown => Kind switch
    {
        AffineKind.Multiply or AffineKind.Divide => true,
        AffineKind.Normalize => _mean is not null && _beta is not null,
        _ => _values is not null,
    };

    /// <summary>Composes the step into the running affine (an empty <paramref name="offset"/>: the scale only).</summary>
    public void Fold(Span<double> scale, Span<double> offset)
    {
        if (offset.Length > 0 && (!OffsetKnown || offset.Length != scale.Length))
            throw new InvalidOperationException($"{Node}: offset of {offset.Length} channels requested, known: {OffsetKnown}");
        var c = _values;
        switch (Kind)
        {
            case AffineKind.Multiply:
                for (int j = 0; j < scale.Length; j++) scale[j] *= c![j];
                for (int j = 0; j < offset.Length; j++) offset[j] *= c![j];
                break;
            case AffineKind.Divide:
                for (int j = 0; j < scale.Length; j++) scale[j] /= c![j];
                for (int j = 0; j < offset.Length; j++) offset[j] /= c![j];
                break;
            case AffineKind.Add:
                for (int j = 0; j < offset.Length; j++) offset[j] += c![j];
                break;
            case AffineKind.Subtract:
                for (int j = 0; j < offset.Length; j++) offset[j] -= c![j];
                break;
            case AffineKind.SubtractFrom:
                for (int j = 0; j < scale.Length; j++) scale[j] = -scale[j];
                for (int j = 0; j < offset.Length; j++) offset[j] = c![j] - offset[j];
                break;
            case AffineKind.Normalize:
                for (int j = 0; j < scale.Length; j++)
                {
                    double s = c![j];
                    scale[j] *= s;
                    if (offset.Length > 0) offset[j] = s * (offset[j] - _mean![j]) + _beta![j];
                }
                break;
        }
    }
}
