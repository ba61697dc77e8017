using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// BatchNormalization (scale, bias, mean, var) and InstanceNormalization (scale, bias): per-channel
/// parameters on axis 0, sliced with the input's channels, which pass through unchanged. At inference a
/// BatchNormalization is a per-channel affine of its input (<see cref="BatchNormFold"/>); an InstanceNormalization
/// is not (it divides by statistics of the data).
/// </summary>
internal sealed class NormalizationRule : IAffineRule
{
    public static readonly NormalizationRule Instance = new();

    // Gain parameters are copied between proportional channels, offsets scale with the ratio.
    private static readonly SiteRole[] BatchNormRoles = [SiteRole.ChannelGain, SiteRole.ChannelOffset, SiteRole.ChannelOffset, SiteRole.ChannelGain];
    private static readonly SiteRole[] InstanceNormRoles = [SiteRole.ChannelGain, SiteRole.ChannelOffset];

    public void Propagate(ChannelFlow flow, Node node)
    {
        if (flow.Layout(node.Input(0)) is not { } input) return;
        if (input.Axis != 1 || !input.IsPlain)
        {
            flow.Freeze(input, $"{node} normalises channels laid out as {input}");
            return;
        }
        // Training-mode outputs (running statistics) are not channel tensors we can follow.
        if (node.Outputs.Skip(1).Any(o => o.Length > 0 && flow.Graph.Consumers(o).Count > 0))
        {
            flow.Freeze(input, $"{node} uses training-mode outputs");
            return;
        }
        var roles = node.OpType == "BatchNormalization" ? BatchNormRoles : InstanceNormRoles;
        for (int k = 0; k < roles.Length; k++)
            if (!flow.AddTensorSite(node, k + 1, 0, input, roles[k])) return;
        flow.SetLayout(node.Outputs[0], input);
    }

    public AffineStep? Affine(Graph graph, Node node, int input, ChannelValues values)
    {
        if (node.OpType != "BatchNormalization" || input != 0 || node.GetInt("training_mode", 0) != 0) return null;
        if (values(node, 1) is not { } gamma || values(node, 4) is not { } variance) return null;
        float eps = BatchNormFold.Epsilon(node);
        var scale = new double[gamma.Length];
        for (int c = 0; c < scale.Length; c++) scale[c] = BatchNormFold.Scale(gamma[c], variance[c], eps);
        return new AffineStep(node, input, AffineKind.Normalize, scale, mean: values(node, 3), beta: values(node, 2));
    }

    public double Ratio(RatioContext ctx)
    {
        if (ctx.InputRatio(0) is not { } r || double.IsNaN(r)) return double.NaN;
        if (ctx.Slices(1) is not { } scale || ctx.Slices(2) is not { } bias) return double.NaN;
        double sj = scale.J[0], si = scale.I[0];
        if (ctx.Node.OpType == "BatchNormalization")
        {
            // z = s·(x − m) + β with s = γ/√(v+ε): z_j = r·(s_j/s_i)·z_i when the offsets follow.
            if (ctx.Slices(3) is not { } mean || ctx.Slices(4) is not { } variance) return double.NaN;
            float eps = BatchNormFold.Epsilon(ctx.Node);
            sj /= Math.Sqrt(variance.J[0] + eps);
            si /= Math.Sqrt(variance.I[0] + eps);
            if (si == 0) return double.NaN;
            double ratio = r * sj / si;
            double tj = bias.J[0] - sj * mean.J[0], ti = bias.I[0] - si * mean.I[0];
            return Proportion.Near(tj, ratio * ti) ? ratio : double.NaN;
        }
        // Instance norm divides the scale out (for r > 0): z_j = (γ_j/γ_i)·z_i when β_j = (γ_j/γ_i)·β_i.
        if (r <= 0 || si == 0) return double.NaN;
        double q = sj / si;
        return Proportion.Near(bias.J[0], q * bias.I[0]) ? q : double.NaN;
    }
}
