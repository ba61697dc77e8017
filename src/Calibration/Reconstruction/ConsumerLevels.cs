using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// Orders the layers to fit: a layer's level is one more than the highest level among the layers its
/// input depends on (and, for a residual target, the layers its skip operand depends on), so every layer
/// at one level can be fitted from a single pass over the pruned model with the layers before it final.
/// </summary>
internal static class ConsumerLevels
{
    /// <summary>
    /// Level per unit (0-based; -1 when its input depends on its own weight). Units whose skip operand
    /// would depend on themselves or on a later layer (the two branches of one Add) come back without
    /// their output chain: the branch fitted later corrects for the earlier one, not both for each other.
    /// </summary>
    public static (int[] Levels, List<ConsumerUnit> Units) Assign(Graph graph, IReadOnlyList<ConsumerUnit> units)
    {
        var owner = new Dictionary<Node, int>();
        for (int u = 0; u < units.Count; u++)
            foreach (var n in units[u].Nodes) owner[n] = u;
        List<int> Dependencies(IEnumerable<string> values) =>
            [.. SubModel.Ancestors(graph, values).Where(owner.ContainsKey).Select(p => owner[p]).Distinct()];
        var features = units.Select(u => Dependencies(u.FeatureValues)).ToArray();
        var baseLevel = Levels(features);

        var result = units.ToList();
        var level = Enumerable.Repeat(-1, units.Count).ToArray();
        var done = new bool[units.Count];
        foreach (int u in Enumerable.Range(0, units.Count).Where(u => baseLevel[u] >= 0).OrderBy(u => baseLevel[u]).ThenBy(u => u))
        {
            var deps = features[u];
            if (units[u].Chain is { PrunedSkip: { } skipValue })
            {
                var skip = Dependencies([skipValue]);
                if (skip.All(d => d != u && done[d])) deps = [.. deps.Concat(skip).Distinct()];
                else result[u] = units[u] with
                {
                    Chain = units[u].Chain!.WithoutSkip() is { Useful: true } rest ? rest : null,
                    SumFittedLater = !skip.Contains(u),
                };
            }
            level[u] = deps.Where(d => level[d] >= 0).Select(d => level[d] + 1).DefaultIfEmpty(0).Max();
            done[u] = true;
        }
        return (level, result);
    }

    /// <summary>Longest-path levels over "depends on" lists; -1 for a unit that depends on itself.</summary>
    private static int[] Levels(List<int>[] dependsOn)
    {
        var level = new int[dependsOn.Length];
        var state = new byte[dependsOn.Length]; // 0 new, 1 visiting, 2 done
        for (int u = 0; u < dependsOn.Length; u++) Visit(u, dependsOn, level, state);
        return level;
    }

    private static int Visit(int u, List<int>[] dependsOn, int[] level, byte[] state)
    {
        if (state[u] == 2) return level[u];
        if (state[u] == 1) return -1;
        state[u] = 1;
        int result = 0;
        foreach (int d in dependsOn[u])
        {
            if (d == u) { result = -1; break; }
            // A dependency that cannot be fitted (its own cycle) imposes no order.
            int l = Visit(d, dependsOn, level, state);
            if (l >= 0) result = Math.Max(result, l + 1);
        }
        state[u] = 2;
        return level[u] = result;
    }
}
