using OnnxSlim.GraphIO;

namespace OnnxSlim.Runtime.Recovery;

/// <summary>
/// What happens to a layer's output y before the next non-linearity: per-channel affine nodes
/// (BatchNormalization, Mul/Div/Add/Sub by a constant), at most one residual Add of a computed skip
/// operand s, then possibly a Relu: z = a⊙y + b (+ s), Relu(z). Two refinements of the fit use it.
/// <list type="bullet">
/// <item>Residual target: s carries the pruning error of everything before it and nothing else can
/// correct it (an identity shortcut has no weights), so the layer is fitted to make z match:
/// its target becomes y_orig + (s_orig − s_pruned)/a.</item>
/// <item>ReLU-aware target: where z_orig &lt; 0 any z ≤ 0 is exact after the Relu, so those entries stop
/// pulling the fit (see <see cref="LayerFit"/>).</item>
/// </list>
/// Scale, offset and the inverse scale are per kept output; the inverse is 0 where a is too small to
/// invert, which leaves that output's target plain.
/// </summary>
internal sealed record OutputChain(double[] Scale, double[] Offset, string? OriginalSkip, string? PrunedSkip, bool ReluFollows)
{
    public double[] InverseScale { get; } = Inverse(Scale);

    public bool HasSkip => PrunedSkip is not null;

    /// <summary>The chain of a single-node unit, or null when nothing useful follows it (no residual Add, no Relu).</summary>
    public static OutputChain? Find(ConsumerUnit unit, Graph original, Graph pruned)
    {
        if (unit.Nodes.Count != 1 || unit.Kind == ConsumerKind.MatMul || unit.Pooled) return null;
        int rank = unit.Kind == ConsumerKind.Conv ? unit.WeightDims.Length : 2;
        var scale = Enumerable.Repeat(1.0, unit.Outputs).ToArray();
        var offset = new double[unit.Outputs];
        var p = Walk(pruned, unit.Nodes[0], rank, unit.Outputs, scale, offset);
        var o = Walk(original, unit.OriginalNodes[0], rank, -1, null, null);
        if (p is null || o is null || (p.Value.Skip is null) != (o.Value.Skip is null) || p.Value.Relu != o.Value.Relu) return null;
        if (p.Value.Skip is null && !p.Value.Relu) return null;
        if (!scale.All(double.IsFinite) || !offset.All(double.IsFinite) || !(scale.Max(Math.Abs) > 0)) return null;
        return new OutputChain(scale, offset, o.Value.Skip, p.Value.Skip, p.Value.Relu);
    }

    private static double[] Inverse(double[] scale)
    {
        double largest = scale.Length == 0 ? 0 : scale.Max(Math.Abs);
        return [.. scale.Select(a => Math.Abs(a) > 1e-6 * largest ? 1 / a : 0)];
    }

    /// <summary>
    /// Follows the node's output through single-consumer nodes: affine ones (folding them into
    /// <paramref name="scale"/>/<paramref name="offset"/> when given), at most one Add of a computed value
    /// (the skip), and stops at anything else, noting whether that is a Relu.
    /// </summary>
    private static (string? Skip, bool Relu)? Walk(Graph graph, Node node, int rank, int channels, double[]? scale, double[]? offset)
    {
        string value = node.Outputs[0];
        string? skip = null;
        for (int hop = 0; hop < 16; hop++)
        {
            if (graph.IsGraphOutput(value) || graph.Consumers(value) is not [var next] || !next.IsStandard) return (skip, false);
            string other = next.Inputs.Count == 2 ? (next.Input(0) == value ? next.Input(1) : next.Input(0)) : "";
            var constant = other.Length > 0 ? graph.ResolveWeight(other) : null;
            double[]? c = constant is null || scale is null ? null : PerChannel(constant.Tensor, rank, channels);
            bool known = constant is not null && (scale is null || c is not null);
            switch (next.OpType)
            {
                case "Relu":
                    return (skip, true);
                case "Add" when constant is null:
                    if (skip is not null || other.Length == 0 || next.Input(0) == next.Input(1)) return (skip, false);
                    skip = other;
                    break;
                case "Add" when known:
                    if (c is not null) for (int o = 0; o < channels; o++) offset![o] += c[o];
                    break;
                case "Sub" when known && next.Input(0) == value:
                    if (c is not null) for (int o = 0; o < channels; o++) offset![o] -= c[o];
                    break;
                case "Mul" when known:
                case "Div" when known && next.Input(0) == value:
                    if (c is not null)
                        for (int o = 0; o < channels; o++)
                        {
                            double f = next.OpType == "Mul" ? c[o] : 1 / c[o];
                            scale![o] *= f;
                            offset![o] *= f;
                        }
                    break;
                case "BatchNormalization" when next.Input(0) == value && next.GetInt("training_mode", 0) == 0 && next.Outputs.Count == 1:
                    if (scale is not null && !FoldBatchNorm(graph, next, channels, scale, offset!)) return null;
                    break;
                default:
                    return (skip, false);
            }
            value = next.Outputs[0];
        }
        return (skip, false);
    }

    /// <summary>y ↦ γ(y − μ)/√(σ² + ε) + β folded into scale and offset.</summary>
    private static bool FoldBatchNorm(Graph graph, Node bn, int channels, double[] scale, double[] offset)
    {
        float[]? Param(int i) => graph.ResolveWeight(bn.Input(i))?.Tensor.ToFloats() is { } v && v.Length == channels ? v : null;
        if (Param(1) is not { } gamma || Param(2) is not { } beta || Param(3) is not { } mean || Param(4) is not { } variance) return false;
        double eps = bn.GetFloat("epsilon", 1e-5f);
        for (int o = 0; o < channels; o++)
        {
            double f = gamma[o] / Math.Sqrt(variance[o] + eps);
            scale[o] *= f;
            offset[o] = (offset[o] - mean[o]) * f + beta[o];
        }
        return true;
    }

    /// <summary>A constant's value per channel (axis 1 of a rank-<paramref name="rank"/> activation), or null if it varies along another axis.</summary>
    private static double[]? PerChannel(Tensor c, int rank, int channels)
    {
        long[] dims = c.Dims;
        if (dims.Length > rank || !c.IsFloating) return null;
        for (int i = 0; i < dims.Length; i++)
        {
            int axis = rank - dims.Length + i;
            if (dims[i] != 1 && !(axis == 1 && dims[i] == channels)) return null;
        }
        float[] v = c.ToFloats();
        if (v.Length != 1 && v.Length != channels) return null;
        return [.. Enumerable.Range(0, channels).Select(o => (double)v[v.Length == 1 ? 0 : o])];
    }
}
