using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// What happens to a layer's output y before the next non-linearity: per-channel affine nodes
/// (BatchNormalization, Mul/Div/Add/Sub by a constant), at most one residual Add of a computed skip
/// operand s, then possibly a Relu: z = a⊙y + b (+ s), Relu(z). The fit targets z, not y:
/// y_target = (a_o·y_orig + b_o + s_orig − b_p − s_pruned) / a_p, with the chain's constants of the
/// original (o) and the pruned (p) graph.
/// <list type="bullet">
/// <item>Residual target: s carries the pruning error of everything before it and nothing else can
/// correct it (an identity shortcut has no weights), so the layer also makes up for s_orig − s_pruned.</item>
/// <item>Edited chain: data-free compensation may have moved a following BatchNorm's mean (a_p, b_p
/// differ from a_o, b_o); targeting z keeps the fit consistent with that.</item>
/// <item>ReLU-aware target: where z_orig &lt; 0 any z ≤ 0 is exact after the Relu, so those entries stop
/// pulling the fit (see <see cref="LayerFit"/>).</item>
/// </list>
/// All vectors are per kept output; the inverse scale is 0 where a_p is too small to invert, which
/// leaves that output's target plain (y_orig).
/// </summary>
internal sealed record OutputChain(double[] Scale, double[] Offset, double[] OriginalScale, double[] OriginalOffset,
    string? OriginalSkip, string? PrunedSkip, bool ReluFollows)
{
    /// <summary>
    /// The clamping activation when it is a hard gate z·clip(z + k, 0, t)/t (hard-swish, however the graph spells it)
    /// rather than a Relu: zero for every z ≤ −k, so below that floor any prediction is as exact as the original.
    /// Null for a Relu (floor 0).
    /// </summary>
    public HardGate? Gate { get; init; }

    /// <summary>Where the activation's flat zero ends: 0 for a Relu, −k for a hard gate.</summary>
    public double Floor => Gate?.Floor ?? 0;

    /// <summary>The activation applied to a pre-activation value z.</summary>
    public double Activate(double z) => Gate is { } g ? g.Apply(z) : Math.Max(z, 0);

    public double[] InverseScale { get; } = Inverse(Scale);

    public bool HasSkip => PrunedSkip is not null;

    /// <summary>Whether the affine part differs between the graphs (beyond float32 rounding).</summary>
    public bool AffineDiffers { get; } = Differ(Scale, OriginalScale) || Differ(Offset, OriginalOffset);

    /// <summary>Whether the chain changes the fit at all.</summary>
    public bool Useful => HasSkip || ReluFollows || AffineDiffers;

    /// <summary>The chain without its skip: the Relu then sees an unknown operand, so ReLU-awareness goes too.</summary>
    public OutputChain WithoutSkip() => HasSkip ? this with { OriginalSkip = null, PrunedSkip = null, ReluFollows = false, Gate = null } : this;

    /// <summary>The chain of a single-node unit whose two graphs agree on its shape, or null (also when it would change nothing).</summary>
    public static OutputChain? Find(ConsumerUnit unit, Graph original, Graph pruned, int originalOutputs)
    {
        if (unit.Nodes.Count != 1 || unit.Kind == ConsumerKind.MatMul || unit.Pooled) return null;
        if (unit.Block > 1)
        {
            // A ConvTranspose's (channel, tap) outputs share their channel's chain; a skip operand would need its own
            // space-to-depth reading, so such a chain is not used.
            int block = unit.Block;
            var channels = unit with { KeptOutputs = [.. unit.KeptOutputs.Where((_, i) => i % block == 0).Select(k => k / block)], Block = 1 };
            return Find(channels, original, pruned, originalOutputs) is { HasSkip: false } shared ? shared.Repeated(block) : null;
        }
        int rank = unit.Kind is ConsumerKind.Conv or ConsumerKind.ConvTranspose ? unit.WeightDims.Length : 2;
        var scale = Enumerable.Repeat(1.0, unit.Outputs).ToArray();
        var offset = new double[unit.Outputs];
        var originalScale = Enumerable.Repeat(1.0, originalOutputs).ToArray();
        var originalOffset = new double[originalOutputs];
        var p = Walk(pruned, unit.Nodes[0], rank, unit.Outputs, scale, offset);
        var o = Walk(original, unit.OriginalNodes[0], rank, originalOutputs, originalScale, originalOffset);
        if (p is null || o is null || (p.Value.Skip is null) != (o.Value.Skip is null) || p.Value.Relu != o.Value.Relu || p.Value.Gate != o.Value.Gate) return null;
        double[] Kept(double[] v) => [.. unit.KeptOutputs.Select(k => v[k])];
        var chain = new OutputChain(scale, offset, Kept(originalScale), Kept(originalOffset), o.Value.Skip, p.Value.Skip, p.Value.Relu) { Gate = p.Value.Gate };
        double[][] all = [chain.Scale, chain.Offset, chain.OriginalScale, chain.OriginalOffset];
        if (!all.All(v => v.All(double.IsFinite)) || !(scale.Max(Math.Abs) > 0)) return null;
        return chain.Useful ? chain : null;
    }

    /// <summary>Each output's entries <paramref name="block"/> times in a row (a ConvTranspose channel's k² outputs).</summary>
    private OutputChain Repeated(int block)
    {
        double[] Repeat(double[] v) => [.. v.SelectMany(x => Enumerable.Repeat(x, block))];
        return new OutputChain(Repeat(Scale), Repeat(Offset), Repeat(OriginalScale), Repeat(OriginalOffset), OriginalSkip, PrunedSkip, ReluFollows) { Gate = Gate };
    }

    private static double[] Inverse(double[] scale)
    {
        double largest = scale.Length == 0 ? 0 : scale.Max(Math.Abs);
        return [.. scale.Select(a => Math.Abs(a) > 1e-6 * largest ? 1 / a : 0)];
    }

    private static bool Differ(double[] a, double[] b)
    {
        for (int i = 0; i < a.Length; i++)
            if (Math.Abs(a[i] - b[i]) > 1e-6 * (Math.Abs(a[i]) + Math.Abs(b[i])) + 1e-12) return true;
        return false;
    }

    /// <summary>
    /// The stored part of an output's target, everything known from the original pass:
    /// (a_o·y_orig + b_o + s_orig − b_p)/a_p; the pruned skip's share, −s_pruned/a_p, follows in the pruned pass.
    /// </summary>
    public double Target(int output, double y, double originalSkip)
    {
        double inv = InverseScale[output];
        return inv == 0 ? y : (OriginalScale[output] * y + OriginalOffset[output] + originalSkip - Offset[output]) * inv;
    }

    /// <summary>
    /// Follows the node's output through single-consumer nodes: affine ones (folded into
    /// <paramref name="scale"/>/<paramref name="offset"/>), at most one Add of a computed value (the skip),
    /// and stops at anything else, noting whether that is a Relu. Null when a constant is not per-channel.
    /// </summary>
    private static (string? Skip, bool Relu, HardGate? Gate)? Walk(Graph graph, Node node, int rank, int channels, double[] scale, double[] offset)
    {
        string value = node.Outputs[0];
        string? skip = null;
        for (int hop = 0; hop < 16; hop++)
        {
            if (graph.IsGraphOutput(value)) return (skip, false, null);
            if (HardGate.Find(graph, value) is { } gate) return (skip, true, gate);
            if (graph.Consumers(value) is not [var next] || !next.IsStandard) return (skip, false, null);
            string other = next.Inputs.Count == 2 ? (next.Input(0) == value ? next.Input(1) : next.Input(0)) : "";
            var constant = other.Length > 0 ? graph.ResolveWeight(other) : null;
            double[]? c = constant is null ? null : PerChannel(constant.Tensor, rank, channels);
            if (constant is not null && c is null) return null;
            switch (next.OpType)
            {
                case "Relu":
                    return (skip, true, null);
                case "Add" when constant is null:
                    if (skip is not null || other.Length == 0 || next.Input(0) == next.Input(1)) return (skip, false, null);
                    skip = other;
                    break;
                case "Add":
                    for (int o = 0; o < channels; o++) offset[o] += c![o];
                    break;
                case "Sub" when next.Input(0) == value && c is not null:
                    for (int o = 0; o < channels; o++) offset[o] -= c[o];
                    break;
                case "Mul" when c is not null:
                case "Div" when c is not null && next.Input(0) == value:
                    for (int o = 0; o < channels; o++)
                    {
                        double f = next.OpType == "Mul" ? c[o] : 1 / c[o];
                        scale[o] *= f;
                        offset[o] *= f;
                    }
                    break;
                case "BatchNormalization" when next.Input(0) == value && next.GetInt("training_mode", 0) == 0 && next.Outputs.Count == 1:
                    if (!FoldBatchNorm(graph, next, channels, scale, offset)) return null;
                    break;
                default:
                    return (skip, false, null);
            }
            value = next.Outputs[0];
        }
        return (skip, false, null);
    }

    /// <summary>y ↦ γ(y − μ)/√(σ² + ε) + β folded into scale and offset.</summary>
    private static bool FoldBatchNorm(Graph graph, Node bn, int channels, double[] scale, double[] offset)
    {
        float[]? Param(int i) => graph.ResolveWeight(bn.Input(i))?.Tensor.ToFloats() is { } v && v.Length == channels ? v : null;
        if (Param(1) is not { } gamma || Param(2) is not { } beta || Param(3) is not { } mean || Param(4) is not { } variance) return false;
        static double[] Wide(float[] v) => Array.ConvertAll(v, x => (double)x);
        Rewriter.BatchNormFold.Fold(bn, Wide(gamma), Wide(beta), Wide(mean), Wide(variance), scale, offset);
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
