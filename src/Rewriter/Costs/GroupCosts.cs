using OnnxSlim.GraphIO;
using OnnxSlim.Spectral;

namespace OnnxSlim.Rewriter;

/// <summary>
/// MACs and parameters as sums of <see cref="CostTerm"/>s in the groups' keep counts k (group index =
/// <see cref="ChannelGroup.Id"/>): a conv costs coefficient·k(out)·k(in), so keeping fewer filters in a
/// group also shrinks the layers that read it. Depthwise convs are linear (OutGroup = InGroup). Frozen
/// groups enter as constants. Both totals at full width equal <see cref="ModelCost"/>'s at the same shapes.
/// </summary>
public sealed class GroupCosts
{
    private GroupCosts(IReadOnlyList<CostTerm> macs, IReadOnlyList<CostTerm> parameters, IReadOnlyList<string> notes)
    {
        Macs = macs;
        Params = parameters;
        Notes = notes;
    }

    public IReadOnlyList<CostTerm> Macs { get; }
    public IReadOnlyList<CostTerm> Params { get; }

    /// <summary>Where the terms are approximations (a layer reading and writing the same group; a group cut by Split), one line each.</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The values whose shapes <see cref="Build"/> needs; same as <see cref="ModelCost.RequiredValues"/>.</summary>
    public static IReadOnlyList<string> RequiredValues(Graph graph) => ModelCost.RequiredValues(graph);

    public static GroupCosts Build(ChannelGroupSet groups, IReadOnlyDictionary<string, long[]> shapes)
    {
        var graph = groups.Graph;
        var notes = new List<string>();
        var macs = new List<CostTerm>();
        foreach (var node in graph.Nodes.Where(Layers.IsLayer))
        {
            long total = ModelCost.NodeMacs(graph, node, shapes);
            if (total == 0) continue;
            var input = groups.LayoutOf(node.Input(0));
            var output = groups.LayoutOf(node.Outputs[0]);
            var weight = Layers.Weight(graph, node);
            bool depthwise = weight is { Groups: > 1 } && input is not null && input.Equals(output);
            if (depthwise)
            {
                // Channel c reads only input channel c: linear in the group's count.
                double perChannel = (double)total / input!.Channels;
                foreach (var (group, weightOfK) in Factors(groups, input, input.Channels))
                    macs.Add(new CostTerm(group, group, perChannel * weightOfK));
                continue;
            }
            // A grouped conv costs (C_out/group)·(C_in/group) per group, group times: bilinear in the two counts as well.
            long inCount = weight?.Inputs ?? -1, outCount = weight?.Outputs ?? -1;
            if (inCount <= 0 || outCount <= 0)
            {
                macs.Add(new CostTerm(-1, -1, total));
                continue;
            }
            double perPair = (double)total / (inCount * outCount);
            List<(int Group, double Weight)> outs = output is null ? [(-1, outCount)] : Factors(groups, output, outCount);
            List<(int Group, double Weight)> ins = input is null ? [(-1, inCount)] : Factors(groups, input, inCount);
            Cross(macs, outs, ins, perPair, groups, notes, node.ToString());
        }

        var parameters = new List<CostTerm>();
        var seen = new HashSet<Tensor>();
        var sitesByTensor = new Dictionary<Tensor, List<TensorSite>>();
        foreach (var site in groups.Sites.OfType<TensorSite>())
        {
            if (!sitesByTensor.TryGetValue(site.Weight.Tensor, out var list)) sitesByTensor[site.Weight.Tensor] = list = [];
            list.Add(site);
        }
        var groupedInputs = new Dictionary<Tensor, GroupedInputSite>();
        foreach (var site in groups.Sites.OfType<GroupedInputSite>()) groupedInputs[site.Weight.Tensor] = site;
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs)
            {
                if (input.Length == 0 || graph.ResolveWeight(input) is not { Tensor.IsFloating: true } weight || !seen.Add(weight.Tensor)) continue;
                long elements = weight.Tensor.ElementCount;
                if (!sitesByTensor.TryGetValue(weight.Tensor, out var sites))
                {
                    parameters.Add(new CostTerm(-1, -1, elements));
                    continue;
                }
                long[] dims = weight.Tensor.Dims;
                if (groupedInputs.TryGetValue(weight.Tensor, out var grouped) && sites.SingleOrDefault(s => s.Axis == grouped.OutputAxis) is { } rows)
                {
                    // A grouped conv's own weight: its outputs times one block's share of its inputs.
                    var blockShare = Factors(groups, grouped.Layout, grouped.Layout.Channels).Select(f => (f.Group, f.Weight / grouped.Blocks)).ToList();
                    Cross(parameters, Factors(groups, rows.Layout, dims[rows.Axis]), blockShare, (double)elements / dims[rows.Axis] / dims[grouped.Axis], groups, notes, $"weight '{weight.Tensor.Name}'");
                    continue;
                }
                // One stored tensor per distinct selection (the rewriter copies a tensor whose readers need different
                // slices); readers without a site keep the original whole.
                var siteReaders = sites.Select(s => (s.Node, s.InputIndex)).ToHashSet();
                string stored = WeightReaders.StoredName(weight);
                if (graph.IsGraphOutput(stored) || WeightReaders.Of(graph, stored).Any(r => !siteReaders.Contains((r.Node, r.Index))))
                    parameters.Add(new CostTerm(-1, -1, elements));
                var selections = sites.GroupBy(s => (s.Node, s.InputIndex))
                    .Select(r => r.GroupBy(s => s.Axis).Select(a => a.First()).OrderBy(s => s.Axis).ToList())
                    .Aggregate(new List<List<TensorSite>>(), (distinct, axes) =>
                    {
                        if (!distinct.Any(d => d.Count == axes.Count && d.Zip(axes).All(p => p.First.Axis == p.Second.Axis && p.First.Layout.Equals(p.Second.Layout))))
                            distinct.Add(axes);
                        return distinct;
                    });
                if (selections.Count > 1) notes.Add($"weight '{weight.Tensor.Name}' is read with {selections.Count} selections: one copy each");
                foreach (var axes in selections)
                {
                    if (axes.Count > 2) throw new InvalidOperationException($"weight '{weight.Tensor.Name}' is sliced on {axes.Count} axes");
                    double per = elements;
                    foreach (var s in axes) per /= dims[s.Axis];
                    var first = Factors(groups, axes[0].Layout, dims[axes[0].Axis]);
                    List<(int Group, double Weight)> second = axes.Count > 1 ? Factors(groups, axes[1].Layout, dims[axes[1].Axis]) : [(-1, 1.0)];
                    Cross(parameters, first, second, per, groups, notes, $"weight '{weight.Tensor.Name}'");
                }
            }
        return new GroupCosts(macs, parameters, notes.Distinct().ToList());
    }

    /// <summary>Σ of the terms at the given keep counts (one per group id).</summary>
    public static double Evaluate(IReadOnlyList<CostTerm> terms, ReadOnlySpan<int> keep) => CostTerm.Total(terms, keep);

    /// <summary>The count along a layout as Σ weight·k(group) (group -1: a constant weight), for prunable groups; frozen ones are constants.</summary>
    private static List<(int Group, double Weight)> Factors(ChannelGroupSet groups, ChannelLayout layout, long extent)
    {
        var result = new List<(int, double)>();
        // Inner sizes unknown in the layout (a flatten of unknown H·W): spread the extent evenly over the channels.
        double uniformInner = layout.InnerKnown ? 0 : (double)extent / layout.Channels;
        foreach (var s in layout.Segments)
        {
            double elements = s.Length * (s.Inner > 0 ? s.Inner : uniformInner);
            var g = groups[s.Group];
            if (g.Frozen) result.Add((-1, elements));
            else result.Add((g.Id, elements / g.Width)); // a Split part keeps its share of the group: approximately proportional
        }
        return result;
    }

    private static void Cross(List<CostTerm> terms, List<(int Group, double Weight)> outs, List<(int Group, double Weight)> ins, double per,
        ChannelGroupSet groups, List<string> notes, string where)
    {
        foreach (var (go, wo) in outs)
            foreach (var (gi, wi) in ins)
            {
                double coefficient = per * wo * wi;
                if (go >= 0 && go == gi)
                {
                    // k² has no CostTerm form (OutGroup == InGroup means linear): linearise at full width.
                    notes.Add($"{where} reads and writes group {go}: its cost is linearised");
                    coefficient *= groups[go].Width;
                }
                terms.Add(new CostTerm(go, gi, coefficient));
            }
    }

}
