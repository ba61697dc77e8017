namespace OnnxSlim.Spectral;

public enum AllocationMethod { Sliming, Uniform }

/// <summary>The configuration: how many filters every group keeps, and how well it met the budget.</summary>
public sealed class KeepAllocation
{
    internal KeepAllocation(AllocationMethod method, BudgetTarget target, int[] keep, bool[] rankCapped,
        double threshold, double requested, double achieved, double maxReduction, bool reachable,
        double macsReduction, double paramsReduction, double filtersReduction, double latencyReduction)
    {
        Method = method; Target = target; Keep = keep; RankCapped = rankCapped; Threshold = threshold;
        RequestedReduction = requested; AchievedReduction = achieved; MaxReduction = maxReduction;
        Reachable = reachable; MacsReduction = macsReduction; ParamsReduction = paramsReduction;
        FiltersReduction = filtersReduction;
        LatencyReduction = latencyReduction;
    }

    public AllocationMethod Method { get; }
    public BudgetTarget Target { get; }

    /// <summary>Keep count per group (fixed groups keep their width).</summary>
    public int[] Keep { get; }

    /// <summary>
    /// Per group: its spectrum is rank-capped (cols &lt; rows), so its keep count came from the
    /// non-zero part of the spectrum mapped onto the width (see <see cref="BudgetSolver"/>).
    /// </summary>
    public bool[] RankCapped { get; }

    /// <summary>Sliming: the global σ/σ₁ threshold τ (last unit kept). Uniform: the kept fraction of every width.</summary>
    public double Threshold { get; }

    public double RequestedReduction { get; }

    /// <summary>Reduction of the target metric actually reached.</summary>
    public double AchievedReduction { get; }

    /// <summary>Largest reduction the bounds allow (every non-fixed group at its floor).</summary>
    public double MaxReduction { get; }

    /// <summary>|Achieved − Requested| is within the solver's tolerance (1% by default).</summary>
    public bool Reachable { get; }

    /// <summary>Reductions of each metric at these keep counts (NaN when that cost model was not given).</summary>
    public double MacsReduction { get; }
    public double ParamsReduction { get; }
    public double FiltersReduction { get; }

    /// <summary>Predicted latency reduction (NaN without a latency model).</summary>
    public double LatencyReduction { get; }
}
