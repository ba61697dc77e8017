using System.Collections.Concurrent;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>Selector factory for the CLI's <c>--criterion</c>, plus a parallel driver over groups.</summary>
public static class FilterSelectors
{
    public static readonly IReadOnlyList<string> Criteria = ["gem", "l1", "l2", "random"];

    public static IFilterSelector Create(string criterion, int seed)
    {
        ArgumentNullException.ThrowIfNull(criterion);
        return criterion.Trim().ToLowerInvariant() switch
        {
            "gem" => new GemSelector(),
            "l1" => new NormSelector(FilterNorm.L1),
            "l2" => new NormSelector(FilterNorm.L2),
            "random" => new RandomSelector(seed),
            _ => throw new ArgumentException($"unknown criterion '{criterion}' (expected gem, l1, l2 or random)", nameof(criterion)),
        };
    }

    /// <summary>
    /// Selects in every group, in parallel, largest groups first. A group whose keep equals its rows
    /// is returned whole without work.
    /// </summary>
    public static int[][] SelectAll(IFilterSelector selector, IReadOnlyList<FilterMatrix> matrices, IReadOnlyList<int> keeps)
    {
        ArgumentNullException.ThrowIfNull(selector);
        ArgumentNullException.ThrowIfNull(matrices);
        ArgumentNullException.ThrowIfNull(keeps);
        if (matrices.Count != keeps.Count)
            throw new ArgumentException($"{matrices.Count} matrices but {keeps.Count} keep counts", nameof(keeps));
        var result = new int[matrices.Count][];
        var order = Enumerable.Range(0, matrices.Count).OrderByDescending(i => GramMatrix.Cost(matrices[i])).ToArray();
        Parallel.ForEach(Partitioner.Create(order, EnumerablePartitionerOptions.NoBuffering),
            i => IdleCores.Occupy(() =>
            {
                if (keeps[i] == matrices[i].Rows)
                {
                    matrices[i].ReleaseCache();
                    result[i] = Enumerable.Range(0, keeps[i]).ToArray();
                }
                else result[i] = selector.Select(matrices[i], keeps[i]);
            }));
        return result;
    }
}
