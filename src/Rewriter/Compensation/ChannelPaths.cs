using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>How a channel got from the fitted (effective) filters to a value.</summary>
internal enum PathKind
{
    /// <summary>Affine in the effective filter outputs: any linear relation between channels carries over.</summary>
    Linear,
    /// <summary>Through positively homogeneous functions (ReLU, LeakyRelu, max pooling): non-negative relations carry over approximately.</summary>
    Homogeneous,
    /// <summary>Through anything else (saturating functions, depthwise filters, gates): no relation carries over.</summary>
    Broken,
}

/// <summary>
/// What is known about every channel of a group at one value: the path kind and gain since the effective
/// filters (value_c ≈ Gain_c · f(filter output_c) + const), and the channel's mean and variance implied by
/// BatchNorm statistics (NaN when unknown). Arrays are indexed by group channel and never mutated once built.
/// </summary>
internal sealed record ChannelState(PathKind[] Kind, double[] Gain, double[] SignAtNonlinearity, bool[] Shifted, double[] Mean, double[] Var)
{
    public static ChannelState Unknown(int width, PathKind kind) => new(
        Enumerable.Repeat(kind, width).ToArray(), Enumerable.Repeat(1.0, width).ToArray(), Enumerable.Repeat(1.0, width).ToArray(),
        new bool[width], Enumerable.Repeat(double.NaN, width).ToArray(), Enumerable.Repeat(double.NaN, width).ToArray());

    public ChannelState Copy() => new((PathKind[])Kind.Clone(), (double[])Gain.Clone(), (double[])SignAtNonlinearity.Clone(),
        (bool[])Shifted.Clone(), (double[])Mean.Clone(), (double[])Var.Clone());
}

/// <summary>
/// Walks a group's nodes in graph order and computes a <see cref="ChannelState"/> for every value carrying
/// the group: which relations between channels survive to each reading layer (for the least-squares fold),
/// and each channel's expected value there (for bias correction). Statistics start at BatchNormalization
/// outputs, taken as N(β, γ²) (what the running statistics say the normalised output is), and pass
/// through channel-wise functions (exact Gaussian moments), per-channel affine ops and residual Adds
/// (independent operands). A conv output has no statistics unless its filter is zero (then it is its bias).
/// </summary>
internal sealed class ChannelPaths
{
    private readonly ChannelGroupSet _groups;
    private readonly ChannelGroup _group;
    private readonly GroupConstants _constants;
    private readonly EffectiveFilters _filters;
    private readonly Dictionary<string, ChannelState> _states = new(StringComparer.Ordinal);

    public ChannelPaths(ChannelGroupSet groups, ChannelGroup group, GroupConstants constants, EffectiveFilters filters)
    {
        _groups = groups;
        _group = group;
        _constants = constants;
        _filters = filters;
        var producers = new HashSet<Node>(group.Producers.Except(group.DepthwiseProducers), ReferenceEqualityComparer.Instance);
        var depthwise = new HashSet<Node>(group.DepthwiseProducers, ReferenceEqualityComparer.Instance);
        foreach (var node in groups.Graph.Nodes)
        {
            var outputs = node.Outputs.Where(Carries).ToList();
            if (outputs.Count == 0) continue;
            ChannelState state;
            if (producers.Contains(node)) state = Producer(node);
            else if (depthwise.Contains(node)) state = Depthwise(node);
            else state = Through(node) ?? ChannelState.Unknown(group.Width, PathKind.Broken);
            foreach (var output in outputs) _states[output] = state;
        }
    }

    /// <summary>The state of the channels at a value, or null when the value does not carry the group.</summary>
    public ChannelState? At(string value) => _states.GetValueOrDefault(value);

    private bool Carries(string value) => _groups.LayoutOf(value)?.Segments.Any(s => s.Group == _group.Id) == true;

    private ChannelState Producer(Node node)
    {
        var state = ChannelState.Unknown(_group.Width, PathKind.Linear);
        // A zero filter makes a constant channel: its value is its bias, exactly.
        double[]? bias = Layers.Weight(_groups.Graph, node) is { BiasInput: >= 0 and var b } ? _constants.Of(node, b) : null;
        var site = _group.Sites.OfType<TensorSite>().First(s => s.Node.Equals(node) && s.Role == SiteRole.ProducerWeight);
        for (int c = 0; c < _group.Width; c++)
        {
            if (site.Layout.PositionOf(_group.Id, c) < 0) continue;
            if (!_filters.IsZero(c)) continue;
            state.Mean[c] = bias is null || double.IsNaN(bias[c]) ? 0 : bias[c];
            state.Var[c] = 0;
        }
        return state;
    }

    private ChannelState Depthwise(Node node)
    {
        var input = In(node, 0);
        var state = ChannelState.Unknown(_group.Width, PathKind.Broken);
        if (input is null) return state;
        var site = _constants.Site(node, 1);
        var bias = _constants.Of(node, 2);
        if (site is null) return state;
        // Constant channels stay constant: the kernel's sum times the value, plus the bias.
        var data = site.Weight.Tensor.ToFloats();
        long[] dims = site.Weight.Tensor.Dims;
        for (int c = 0; c < _group.Width; c++)
        {
            int p = site.Layout.PositionOf(_group.Id, c);
            if (p < 0 || input.Var[c] != 0) continue;
            double sum = TensorSlicer.Take(data, dims, site.Axis, site.Layout.ElementsOf(p).ElementOffset, 1).Sum(v => (double)v);
            state.Mean[c] = sum * input.Mean[c] + (bias is null || double.IsNaN(bias[c]) ? 0 : bias[c]);
            state.Var[c] = 0;
        }
        return state;
    }

    private ChannelState? In(Node node, int k) => k < node.Inputs.Count && node.Input(k).Length > 0 ? _states.GetValueOrDefault(node.Input(k)) : null;

    /// <summary>The carrying inputs merged channel by channel (layout ops: each channel comes from the input that holds it).</summary>
    private ChannelState? Merged(Node node)
    {
        ChannelState? result = null;
        for (int k = 0; k < node.Inputs.Count; k++)
        {
            if (In(node, k) is not { } s) continue;
            if (result is null) { result = s; continue; }
            var layout = _groups.LayoutOf(node.Input(k))!;
            result = result.Copy();
            for (int c = 0; c < _group.Width; c++)
            {
                if (layout.PositionOf(_group.Id, c) < 0) continue;
                result.Kind[c] = s.Kind[c];
                result.Gain[c] = s.Gain[c];
                result.SignAtNonlinearity[c] = s.SignAtNonlinearity[c];
                result.Shifted[c] = s.Shifted[c];
                result.Mean[c] = s.Mean[c];
                result.Var[c] = s.Var[c];
            }
        }
        return result;
    }

    private ChannelState? Through(Node node)
    {
        if (!node.IsStandard) return null;
        switch (node.OpType)
        {
            case "Identity" or "Dropout" or "Flatten" or "Reshape" or "Squeeze" or "Unsqueeze" or "Transpose" or "Concat" or "Split"
                or "Slice" or "Pad" or "Resize" or "Upsample" or "AveragePool" or "GlobalAveragePool" or "ReduceMean":
                return Merged(node);
            case "Cast":
                return DataType.IsFloating((int)node.GetInt("to", 0)) ? Merged(node) : null;
            case "MaxPool" or "GlobalMaxPool" or "ReduceMax":
                // Positively homogeneous; the mean of a maximum is not known: the input's is a lower bound.
                return Nonlinear(In(node, 0), PathKind.Homogeneous, (m, v) => (m, v));
            case "Relu":
                return Nonlinear(In(node, 0), PathKind.Homogeneous, GaussianMoments.Relu);
            case "LeakyRelu":
            {
                double alpha = node.GetFloat("alpha", 0.01f);
                return Nonlinear(In(node, 0), PathKind.Homogeneous, (m, v) => GaussianMoments.Leaky(m, v, alpha));
            }
            case "Abs":
                return Nonlinear(In(node, 0), PathKind.Homogeneous, (m, v) => GaussianMoments.Of(Math.Abs, m, v));
            case "Neg":
                return Affine(In(node, 0), _ => -1, _ => 0, captured: false);
            case "BatchNormalization":
                return BatchNorm(node);
            case "Add" or "Sub" or "Sum" or "Mean" or "Mul" or "Div" or "Max" or "Min" or "PRelu":
                return Elementwise(node);
            default:
                return Saturating(node);
        }
    }

    /// <summary>Channel-wise functions that are not positively homogeneous: relations break, moments by integration.</summary>
    private ChannelState? Saturating(Node node)
    {
        Func<double, double>? f = node.OpType switch
        {
            "Clip" => ClipFunction(node),
            "Sigmoid" => x => 1 / (1 + Math.Exp(-x)),
            "HardSigmoid" => HardSigmoid(node.GetFloat("alpha", 0.2f), node.GetFloat("beta", 0.5f)),
            "HardSwish" => x => x * HardSigmoid(1 / 6f, 0.5f)(x),
            "Tanh" => Math.Tanh,
            "Softplus" => x => x > 30 ? x : Math.Log(1 + Math.Exp(x)),
            "Elu" => Elu(node.GetFloat("alpha", 1f), 1),
            "Selu" => Elu(node.GetFloat("alpha", 1.67326319217681884765625f), node.GetFloat("gamma", 1.05070102214813232421875f)),
            _ => null,
        };
        var input = In(node, 0);
        if (f is null || input is null || node.Inputs.Skip(1).Any(i => i.Length > 0 && _groups.LayoutOf(i) is not null)) return null;
        return Nonlinear(input, PathKind.Broken, (m, v) => GaussianMoments.Of(f, m, v));
    }

    private Func<double, double>? ClipFunction(Node node)
    {
        double low = node.GetFloat("min", float.MinValue), high = node.GetFloat("max", float.MaxValue);
        if (node.Input(1).Length > 0) { if (Scalar(node, 1) is { } l) low = l; else return null; }
        if (node.Input(2).Length > 0) { if (Scalar(node, 2) is { } h) high = h; else return null; }
        return x => Math.Clamp(x, low, Math.Max(low, high));
    }

    private double? Scalar(Node node, int k) => _groups.Graph.ResolveWeight(node.Input(k)) is { Tensor: { IsFloating: true, ElementCount: 1 } t } ? t.ToFloats()[0] : null;

    private static Func<double, double> HardSigmoid(double alpha, double beta) => x => Math.Clamp(alpha * x + beta, 0, 1);

    private static Func<double, double> Elu(double alpha, double gamma) => x => gamma * (x > 0 ? x : alpha * (Math.Exp(Math.Max(x, -50)) - 1));

    private ChannelState? Nonlinear(ChannelState? input, PathKind kind, Func<double, double, (double, double)> moments)
    {
        if (input is null) return null;
        var s = input.Copy();
        for (int c = 0; c < s.Kind.Length; c++)
        {
            // A channel shifted by a constant after an earlier nonlinearity is no longer homogeneous in its filter.
            var k = kind == PathKind.Homogeneous && s.Shifted[c] ? PathKind.Broken : kind;
            if (s.Kind[c] == PathKind.Linear) s.SignAtNonlinearity[c] = Math.Sign(s.Gain[c]);
            s.Kind[c] = (PathKind)Math.Max((int)s.Kind[c], (int)k);
            s.Shifted[c] = false;
            if (double.IsNaN(s.Mean[c]) || double.IsNaN(s.Var[c])) { s.Mean[c] = s.Var[c] = double.NaN; continue; }
            (s.Mean[c], s.Var[c]) = moments(s.Mean[c], s.Var[c]);
        }
        return s;
    }

    /// <summary>value_c = scale_c·input_c + offset_c; the gain follows the scale unless the filters already hold it.</summary>
    private static ChannelState? Affine(ChannelState? input, Func<int, double> scale, Func<int, double> offset, bool captured)
    {
        if (input is null) return null;
        var s = input.Copy();
        for (int c = 0; c < s.Kind.Length; c++)
        {
            double a = scale(c), b = offset(c);
            if (double.IsNaN(a) || double.IsNaN(b)) { s.Kind[c] = PathKind.Broken; s.Mean[c] = s.Var[c] = double.NaN; continue; }
            if (!captured) s.Gain[c] *= a;
            if (b != 0 && s.Kind[c] != PathKind.Linear) s.Shifted[c] = true;
            s.Mean[c] = a * s.Mean[c] + b;
            s.Var[c] = a * a * s.Var[c];
        }
        return s;
    }

    private ChannelState? BatchNorm(Node node)
    {
        var input = In(node, 0);
        double[]? gamma = _constants.Of(node, 1), beta = _constants.Of(node, 2), mean = _constants.Of(node, 3), variance = _constants.Of(node, 4);
        if (input is null || gamma is null || beta is null || mean is null || variance is null) return null;
        float eps = BatchNormFold.Epsilon(node);
        double Scale(int c) => BatchNormFold.Scale(gamma[c], variance[c], eps);
        var s = Affine(input, Scale, c => beta[c] - Scale(c) * mean[c], _filters.Captured.Contains(node))!;
        for (int c = 0; c < s.Kind.Length; c++)
        {
            // The running statistics say what the normalised output is, unless the input is known exactly (a constant).
            if (input.Var[c] == 0 && !double.IsNaN(input.Mean[c])) continue;
            s.Mean[c] = beta[c];
            s.Var[c] = gamma[c] * gamma[c];
        }
        return s;
    }

    private ChannelState? Elementwise(Node node)
    {
        string op = node.OpType;
        var carrying = new List<int>();
        for (int k = 0; k < node.Inputs.Count; k++) if (In(node, k) is not null) carrying.Add(k);
        if (carrying.Count == 0) return null;
        int width = _group.Width;
        if (carrying.Count == 1 && node.Inputs.Count == 2)
        {
            int x = carrying[0], k = 1 - x;
            var input = In(node, x)!;
            var c = _constants.Of(node, k);
            bool captured = _filters.Captured.Contains(node);
            switch (op)
            {
                case "Add" when c is not null:
                    return Affine(input, _ => 1, j => c[j], captured);
                case "Sub" when c is not null:
                    return x == 0 ? Affine(input, _ => 1, j => -c[j], captured) : Affine(input, _ => -1, j => c[j], captured);
                case "Mul" when c is not null:
                    return Affine(input, j => c[j], _ => 0, captured);
                case "Div" when c is not null && x == 0:
                    return Affine(input, j => 1 / c[j], _ => 0, captured);
                case "Max" or "Min" when c is not null:
                {
                    bool relu = op == "Max" && c.All(v => v == 0);
                    var kind = relu ? PathKind.Homogeneous : PathKind.Broken;
                    var result = Nonlinear(input, kind, (m, v) => (m, v))!;
                    for (int j = 0; j < width; j++)
                    {
                        if (double.IsNaN(input.Mean[j]) || double.IsNaN(c[j])) { result.Mean[j] = result.Var[j] = double.NaN; continue; }
                        double bound = c[j];
                        (result.Mean[j], result.Var[j]) = op == "Max"
                            ? GaussianMoments.Of(z => Math.Max(z, bound), input.Mean[j], input.Var[j])
                            : GaussianMoments.Of(z => Math.Min(z, bound), input.Mean[j], input.Var[j]);
                    }
                    return result;
                }
                case "PRelu" when x == 0 && c is not null:
                {
                    bool shared = c.Where(v => !double.IsNaN(v)).Distinct().Count() <= 1;
                    var result = Nonlinear(input, shared ? PathKind.Homogeneous : PathKind.Broken, (m, v) => (m, v))!;
                    for (int j = 0; j < width; j++)
                    {
                        if (double.IsNaN(input.Mean[j]) || double.IsNaN(c[j])) { result.Mean[j] = result.Var[j] = double.NaN; continue; }
                        (result.Mean[j], result.Var[j]) = GaussianMoments.Leaky(input.Mean[j], input.Var[j], c[j]);
                    }
                    return result;
                }
            }
            return null;
        }
        if (op is not ("Add" or "Sub" or "Sum" or "Mean") || carrying.Count != node.Inputs.Count(i => i.Length > 0)) return null;
        // Sums of carrying operands (residual Adds): linear when every operand has the same gain; moments add (independence).
        var states = carrying.Select(k => In(node, k)!).ToList();
        var s = ChannelState.Unknown(width, PathKind.Linear);
        double factor = op == "Mean" ? 1.0 / states.Count : 1;
        for (int j = 0; j < width; j++)
        {
            var first = states[0];
            s.Gain[j] = first.Gain[j] * factor;
            s.SignAtNonlinearity[j] = first.SignAtNonlinearity[j];
            double mean = 0, var = 0;
            for (int t = 0; t < states.Count; t++)
            {
                var o = states[t];
                double sign = op == "Sub" && t == 1 ? -1 : 1;
                s.Kind[j] = (PathKind)Math.Max((int)s.Kind[j], (int)o.Kind[j]);
                s.Shifted[j] |= o.Shifted[j];
                if (!Same(sign * o.Gain[j], first.Gain[j]) || o.SignAtNonlinearity[j] != first.SignAtNonlinearity[j]) s.Kind[j] = PathKind.Broken;
                mean += sign * o.Mean[j];
                var += o.Var[j];
            }
            s.Mean[j] = factor * mean;
            s.Var[j] = factor * factor * var;
        }
        return s;
    }

    private static bool Same(double a, double b) => Math.Abs(a - b) <= 1e-6 * (Math.Abs(a) + Math.Abs(b)) + 1e-30;
}
