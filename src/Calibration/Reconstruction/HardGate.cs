using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// A hard gate z ↦ z·clip(z + k, 0, t)/t: hard-swish (k = 3, t = 6) as a HardSwish node, as z·HardSigmoid(z), or as
/// opset-9 exports spell it (Add k → Clip(0, t) → Mul by z, scaled by 1/t anywhere along). Like a Relu it is exactly
/// zero below a floor (z ≤ −k), so the ReLU-aware fit applies with that floor (see <see cref="OutputChain"/>).
/// </summary>
internal sealed record HardGate(double Shift, double Top)
{
    public double Floor => -Shift;

    public double Apply(double z) => z * Math.Clamp(z + Shift, 0, Top) / Top;

    /// <summary>The gate that <paramref name="value"/> feeds, when all its readers belong to one; else null.</summary>
    public static HardGate? Find(Graph graph, string value)
    {
        var readers = graph.Consumers(value);
        if (readers.Any(r => !r.IsStandard)) return null;
        if (readers is [{ OpType: "HardSwish" }]) return new HardGate(3, 6);
        if (readers.Count != 2) return null;
        var mul = readers.FirstOrDefault(r => r.OpType == "Mul");
        var gate = readers.FirstOrDefault(r => !ReferenceEquals(r, mul));
        if (mul is null || gate is null || graph.IsGraphOutput(gate.Outputs[0])) return null;
        string other = mul.Input(0) == value ? mul.Input(1) : mul.Input(0);
        if (other == value) return null;
        if (gate.OpType == "HardSigmoid")
        {
            double alpha = gate.GetFloat("alpha", 0.2f), beta = gate.GetFloat("beta", 0.5f);
            return alpha > 0 && Reaches(graph, gate.Outputs[0], other) ? new HardGate(beta / alpha, 1 / alpha) : null;
        }
        if (gate.OpType != "Add" || gate.Inputs.Count != 2) return null;
        string shift = gate.Input(0) == value ? gate.Input(1) : gate.Input(0);
        if (graph.ResolveWeight(shift)?.Tensor is not { ElementCount: 1, IsFloating: true } k) return null;
        if (graph.Consumers(gate.Outputs[0]) is not [{ OpType: "Clip" } clip] || !clip.IsStandard) return null;
        var (lo, hi) = ClipBounds(graph, clip);
        if (lo != 0 || !(hi > 0) || !double.IsFinite(hi)) return null;
        return Reaches(graph, clip.Outputs[0], other) ? new HardGate(k.ToFloats()[0], hi) : null;
    }

    /// <summary>Whether <paramref name="to"/> is <paramref name="from"/> or follows it through scalings by constants only.</summary>
    private static bool Reaches(Graph graph, string from, string to)
    {
        for (int hop = 0; hop < 3; hop++)
        {
            if (from == to) return true;
            if (graph.Consumers(from) is not [{ OpType: "Mul" or "Div" } next] || !next.IsStandard || next.Input(0) != from
                || graph.ResolveWeight(next.Input(1))?.Tensor is not { ElementCount: 1 }) return false;
            from = next.Outputs[0];
        }
        return from == to;
    }

    private static (double Lo, double Hi) ClipBounds(Graph graph, Node clip)
    {
        double Bound(int input, string attribute, double fallback)
        {
            if (clip.Inputs.Count > input && clip.Input(input).Length > 0)
                return graph.ResolveWeight(clip.Input(input))?.Tensor.ToFloats() is [var v] ? v : double.NaN;
            return clip.GetFloat(attribute, (float)fallback);
        }
        return (Bound(1, "min", double.NegativeInfinity), Bound(2, "max", double.PositiveInfinity));
    }
}
