using OnnxSlim.GraphIO;

namespace OnnxSlim.Pruning;

/// <summary>The pruned model (in memory, owned by this result), the plan that produced it and what was measured.</summary>
public sealed class PruneResult(OnnxModel model, PlanFile plan, PruneSummary summary) : IDisposable
{
    public OnnxModel Model { get; } = model;
    public PlanFile Plan { get; } = plan;
    public PruneSummary Summary { get; } = summary;

    public void Dispose() => Model.Dispose();
}
