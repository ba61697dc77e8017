using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter.Rules;

namespace OnnxSlim.Rewriter;

/// <summary>
/// Finds the coupled channel groups of a graph (the ONNX counterpart of Torch-Pruning's DepGraph): walks the
/// nodes in order, lets each operator's rule carry channel layouts from inputs to outputs, then freezes what
/// cannot be proven safe (graph outputs, operators without a rule, subgraph captures, a group appearing twice
/// in one tensor). Custom-domain and quantized operators have no rule, so their channels are frozen.
/// </summary>
public static class ChannelGroups
{
    public static ChannelGroupSet Find(OnnxModel model, IReadOnlyDictionary<string, long[]>? shapes = null) =>
        Find(model.Graph, shapes, model.Opset);

    /// <param name="shapes">Concrete shapes of intermediate values (see <see cref="ShapeQueries"/>); without them the model's value_info is used and reshapes of unknown shape are frozen.</param>
    /// <param name="opset">The default-domain opset (0 when unknown).</param>
    public static ChannelGroupSet Find(Graph graph, IReadOnlyDictionary<string, long[]>? shapes = null, long opset = 0)
    {
        // Ranges that meet channels they do not line up with (a C2f's residual half) ask for their producers'
        // outputs to be cut into separate sets; analyse again with those cuts until none is asked for.
        var partitions = new Dictionary<Node, int[]>(ReferenceEqualityComparer.Instance);
        for (int pass = 0; ; pass++)
        {
            var flow = new ChannelFlow(graph, shapes, opset, partitions);
            foreach (var node in graph.Nodes)
            {
                if (OperatorRules.For(node) is { } rule) rule.Propagate(flow, node);
                else flow.FreezeInputs(node, node.HasSubgraphs ? $"read by {node}, which has subgraphs" : $"read by {node}, which has no channel rule");
            }
            if (flow.RequestedCuts.Count > 0 && pass < MaxPartitionPasses)
            {
                foreach (var (node, cuts) in flow.RequestedCuts)
                    partitions[node] = [.. (partitions.GetValueOrDefault(node) ?? []).Union(cuts).Order()];
                continue;
            }
            FreezeEscapes(flow);
            FreezeRepeatedGroups(flow);
            return Build(flow);
        }
    }

    private const int MaxPartitionPasses = 8;

    /// <summary>The values whose concrete shapes <see cref="Find"/> can use (reshape, flatten and squeeze inputs and outputs, element-wise operands); probe them with Runtime's ShapeProbe.</summary>
    public static IReadOnlyList<string> ShapeQueries(Graph graph)
    {
        var names = new List<string>();
        foreach (var node in graph.Nodes)
        {
            switch (node.OpType)
            {
                case "Reshape":
                    names.Add(node.Input(0));
                    names.Add(node.Outputs[0]);
                    break;
                case "Flatten" or "Squeeze" or "MatMul":
                    names.Add(node.Input(0));
                    break;
                case "Add" or "Sub" or "Mul" or "Div" or "Max" or "Min" or "Sum" or "Mean" or "PRelu":
                    names.AddRange(node.Inputs.Where(i => i.Length > 0 && graph.Constant(i) is null));
                    break;
            }
        }
        return [.. names.Where(n => n.Length > 0).Distinct()];
    }

    /// <summary>Graph outputs and values read from inside a subgraph keep all their channels.</summary>
    private static void FreezeEscapes(ChannelFlow flow)
    {
        foreach (var output in flow.Graph.Outputs)
            flow.Freeze(flow.Layout(output.Name), $"reaches graph output '{output.Name}'");
        foreach (var (value, layout) in flow.Layouts)
            foreach (var consumer in flow.Graph.Consumers(value))
                if (!consumer.Inputs.Contains(value))
                    flow.Freeze(layout, $"captured by a subgraph of {consumer}");
    }

    /// <summary>
    /// A tensor may hold one group in several places when each place holds the same whole channels of it
    /// (SPPF's Concat(x, pool(x), …), a C2f's Concat(x, x + f(x))): every place then keeps the same channels.
    /// Overlapping or differently cut places of one group (a shuffle) are frozen.
    /// </summary>
    private static void FreezeRepeatedGroups(ChannelFlow flow)
    {
        void Check(ChannelLayout layout, string where)
        {
            var byRoot = layout.Segments.GroupBy(s => flow.Root(s.Group));
            foreach (var places in byRoot)
            {
                if (places.Count() < 2) continue;
                var first = places.First();
                bool same = places.All(s => s.Start == first.Start && s.Length == first.Length && s.Inner == first.Inner);
                bool disjoint = places.OrderBy(s => s.Start).Zip(places.OrderBy(s => s.Start).Skip(1)).All(p => p.First.End <= p.Second.Start);
                if (!same && !disjoint) flow.Freeze(layout, $"one group appears twice in {where} with overlapping channel ranges");
            }
        }
        foreach (var (value, layout) in flow.Layouts) Check(layout, $"'{value}'");
        foreach (var site in flow.Sites) Check(site.Layout, site.Node.ToString());
    }

    private static ChannelGroupSet Build(ChannelFlow flow)
    {
        var graph = flow.Graph;
        var order = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < graph.Nodes.Count; i++) order[graph.Nodes[i]] = i;
        var idByRoot = new Dictionary<int, int>();
        var groups = new List<ChannelGroup>();
        for (int set = 0; set < flow.SetCount; set++)
        {
            int root = flow.Root(set);
            if (idByRoot.ContainsKey(root)) continue;
            idByRoot[root] = groups.Count;
            var depthwise = flow.Depthwise(root).OrderBy(n => order[n]).ToList();
            var producers = flow.Producers(root).OrderBy(n => order[n]).Concat(depthwise).ToList();
            groups.Add(new ChannelGroup(groups.Count, flow.Width(root), producers, depthwise, [.. flow.Reasons(root)], flow.Blocks(root)));
        }
        int Map(int set) => idByRoot[flow.Root(set)];
        var layouts = flow.Layouts.ToDictionary(kv => kv.Key, kv => kv.Value.MapGroups(Map), StringComparer.Ordinal);
        foreach (var site in flow.Sites) site.Layout = site.Layout.MapGroups(Map);
        var sitesByGroup = groups.Select(_ => new List<SliceSite>()).ToList();
        foreach (var site in flow.Sites)
            foreach (int g in site.Layout.Groups) sitesByGroup[g].Add(site);
        var valuesByGroup = groups.Select(_ => new List<string>()).ToList();
        foreach (var (value, layout) in layouts)
            foreach (int g in layout.Groups) valuesByGroup[g].Add(value);
        foreach (var group in groups)
        {
            group.Sites = sitesByGroup[group.Id];
            group.Values = valuesByGroup[group.Id];
        }
        return new ChannelGroupSet(graph, groups, flow.Sites, layouts);
    }
}
