using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Runtime.Recovery;

/// <summary>
/// Orders the layers to fit: a layer's level is one more than the highest level among the layers its
/// input depends on, so every layer at one level can be fitted from a single pass over the pruned model
/// (the layers before it already re-fitted).
/// </summary>
internal static class ConsumerLevels
{
    /// <summary>Level per unit (0-based); a unit whose input depends on its own weight gets -1.</summary>
    public static int[] Assign(Graph graph, IReadOnlyList<ConsumerUnit> units)
    {
        var owner = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        for (int u = 0; u < units.Count; u++)
            foreach (var n in units[u].Nodes) owner[n.Proto] = u;
        var dependsOn = new List<int>[units.Count];
        for (int u = 0; u < units.Count; u++)
        {
            var ancestors = SubModel.Ancestors(graph, units[u].FeatureValues);
            dependsOn[u] = [.. ancestors.Where(owner.ContainsKey).Select(p => owner[p]).Distinct()];
        }
        var level = new int[units.Count];
        var state = new byte[units.Count]; // 0 new, 1 visiting, 2 done
        for (int u = 0; u < units.Count; u++) Visit(u, dependsOn, level, state);
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
