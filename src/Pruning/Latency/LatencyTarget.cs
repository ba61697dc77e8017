using System.Text.Json.Serialization;
using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning;

/// <summary>One check of the latency model: what was asked of the solver, what the model predicted for its keep counts, what was measured.</summary>
public sealed record LatencyCheck(
    [property: JsonPropertyName("requested")] double Requested,
    [property: JsonPropertyName("predicted_reduction")] double PredictedReduction,
    [property: JsonPropertyName("measured_reduction")] double MeasuredReduction);

/// <summary>
/// The latency target's cost model, and optionally a way to measure a keep plan for real (the pruned model against the
/// original): then the allocation is checked and, where the measured reduction misses the request by more than
/// <see cref="Tolerance"/>, solved again with the request scaled by measured/predicted (a secant step on the model's
/// error near the solution), at most <see cref="MaxChecks"/> times. The per-layer model gets the shares right; the
/// check corrects what it cannot see (fusions ONNX Runtime only makes at some widths, caches).
/// </summary>
/// <param name="measureRatio">Pruned over original run time at given keep counts; null: the model is trusted.</param>
public sealed class LatencyTarget(LatencyModel model, int maxChecks = 0, Func<int[], double>? measureRatio = null)
{
    public const double Tolerance = 0.01;

    public LatencyModel Model { get; } = model;

    public int MaxChecks { get; } = measureRatio is null ? 0 : maxChecks;

    /// <summary>The checks made, in order (empty without a measuring function).</summary>
    public List<LatencyCheck> Checks { get; } = [];

    /// <param name="allocate">Allocates for a requested predicted reduction.</param>
    public KeepAllocation Allocate(Func<double, KeepAllocation> allocate, double ratio)
    {
        ArgumentNullException.ThrowIfNull(allocate);
        double requested = ratio, target = 1 - ratio;
        var allocation = allocate(requested);
        for (int check = 0; check < MaxChecks; check++)
        {
            double predicted = 1 - allocation.LatencyReduction, measured = measureRatio!(allocation.Keep);
            Checks.Add(new LatencyCheck(requested, 1 - predicted, 1 - measured));
            if (Math.Abs(measured - target) <= Tolerance || !(measured > 0) || !(predicted > 0)) break;
            double next = 1 - NextPredictedRatio(target, predicted, measured);
            next = Math.Clamp(next, 0, PruneOptions.MaxRatio);
            if (Math.Abs(next - requested) < 1e-4) break;
            requested = next;
            allocation = allocate(requested);
        }
        return allocation;
    }

    /// <summary>
    /// The predicted run-time ratio to solve for next: through the last two checks (measured as a line in predicted)
    /// when there are two and they rise together, else through the last check and the origin (measured ∝ predicted).
    /// </summary>
    private double NextPredictedRatio(double target, double predicted, double measured)
    {
        if (Checks.Count >= 2)
        {
            var (a, b) = (Checks[^2], Checks[^1]);
            double p1 = 1 - a.PredictedReduction, m1 = 1 - a.MeasuredReduction, p2 = 1 - b.PredictedReduction, m2 = 1 - b.MeasuredReduction;
            double slope = (m2 - m1) / (p2 - p1);
            if (double.IsFinite(slope) && slope > 0.2 && slope < 5) return p2 + (target - m2) / slope;
        }
        return target * predicted / measured;
    }
}
