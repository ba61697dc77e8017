namespace OnnxSlim.Spectral;

/// <summary>
/// One term of a cost model (MACs or parameters): value = Coefficient·k(OutGroup)·k(InGroup), where
/// k is a group's keep count and index −1 means "not a group" (factor 1). When OutGroup == InGroup ≥ 0
/// (depthwise conv: channel j only reads input j) the value is Coefficient·k, not k².
/// A model's cost is the sum of its terms.
/// </summary>
public readonly record struct CostTerm(int OutGroup, int InGroup, double Coefficient)
{
    public double Evaluate(ReadOnlySpan<int> keep)
    {
        double o = OutGroup >= 0 ? keep[OutGroup] : 1;
        if (OutGroup >= 0 && OutGroup == InGroup) return Coefficient * o;
        double i = InGroup >= 0 ? keep[InGroup] : 1;
        return Coefficient * o * i;
    }

    /// <summary>Σ of the terms at the given keep counts.</summary>
    public static double Total(IReadOnlyList<CostTerm> terms, ReadOnlySpan<int> keep)
    {
        double s = 0;
        for (int t = 0; t < terms.Count; t++) s += terms[t].Evaluate(keep);
        return s;
    }
}
