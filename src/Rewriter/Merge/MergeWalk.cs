using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter.Rules;

namespace OnnxSlim.Rewriter;

/// <summary>One addition of a merge: along <see cref="Axis"/> of a consumer weight, elements of the removed channel, times <see cref="Ratio"/>, go into the kept channel's.</summary>
internal readonly record struct MergeAddition(WeightRef Weight, long[] Dims, int Axis, long From, long To, long Count, double Ratio);

/// <summary>
/// Checks, for one group and a removed channel j, whether channel j equals r·(channel i) of a kept channel i
/// wherever the group's channels are read by the next layers. It walks the group's nodes in graph order,
/// asking each rule how the ratio passes (producers compare filter rows, affine ops their parameters,
/// ReLU keeps positive ratios, Sigmoid only copies). When every reading weight sees a known ratio, the
/// removed channel's input weights can be added, scaled, into the kept one's and the output is unchanged.
/// </summary>
internal sealed class MergeWalk
{
    private readonly ChannelGroupSet _groups;
    private readonly ChannelGroup _group;
    private readonly Func<WeightRef, float[]> _floats;
    private readonly List<Node> _nodes;
    private readonly Dictionary<(Node, int), List<TensorSite>> _sitesByInput = [];
    private readonly HashSet<Node> _producers;
    private readonly Dictionary<string, double> _ratios = new(StringComparer.Ordinal);
    private readonly bool _unsupported;
    private int _j, _i;

    public MergeWalk(ChannelGroupSet groups, ChannelGroup group, Func<WeightRef, float[]> floats)
    {
        _groups = groups;
        _group = group;
        _floats = floats;
        foreach (var site in group.Sites.OfType<TensorSite>())
        {
            if (!_sitesByInput.TryGetValue((site.Node, site.InputIndex), out var list)) _sitesByInput[(site.Node, site.InputIndex)] = list = [];
            list.Add(site);
        }
        _producers = [.. group.Producers.Except(group.DepthwiseProducers)];
        bool Carries(string v) => groups.LayoutOf(v)?.Segments.Any(s => s.Group == group.Id) == true;
        _nodes = [.. groups.Graph.Nodes.Where(n => n.Inputs.Any(Carries) || n.Outputs.Any(Carries))];
        // Not proven here: a grouped conv reading the channels (its additions would be per conv group), and a
        // per-channel parameter that holds the group in two places (only the first would be compared).
        _unsupported = group.Sites.OfType<GroupedInputSite>().Any()
            || group.Sites.OfType<TensorSite>().Any(s => s.Role != SiteRole.ConsumerWeight && s.Layout.Repeats(group.Id));
    }

    public double? RatioOf(string value)
    {
        if (_groups.LayoutOf(value) is not { } layout || layout.PositionOf(_group.Id, _j) < 0) return null;
        if (layout.PositionOf(_group.Id, _i) < 0) return double.NaN;
        return _ratios.TryGetValue(value, out double r) ? r : double.NaN;
    }

    public (float[] J, float[] I)? Slices(Node node, int k)
    {
        if (_sitesByInput.TryGetValue((node, k), out var sites))
        {
            foreach (var site in sites)
            {
                int pj = site.Layout.PositionOf(_group.Id, _j), pi = site.Layout.PositionOf(_group.Id, _i);
                if (pj < 0 || pi < 0) continue;
                var data = _floats(site.Weight);
                long[] dims = site.Weight.Tensor.Dims;
                var (ej, inner) = site.Layout.ElementsOf(pj);
                var (ei, _) = site.Layout.ElementsOf(pi);
                return (TensorSlicer.Take(data, dims, site.Axis, ej, inner), TensorSlicer.Take(data, dims, site.Axis, ei, inner));
            }
            return null;
        }
        string input = node.Input(k);
        if (input.Length == 0 || _groups.Graph.ResolveWeight(input) is not { Tensor.IsFloating: true } weight) return null;
        var whole = _floats(weight);
        return (whole, whole);
    }

    /// <summary>The consumer-weight additions that merge channel j into channel i, or null when j is not a proven multiple of i.</summary>
    public List<MergeAddition>? TryMerge(int j, int i)
    {
        if (_unsupported || _group.BlockOf(j) != _group.BlockOf(i)) return null; // a grouped conv's filters in different groups read different inputs
        _j = j;
        _i = i;
        _ratios.Clear();
        var additions = new List<MergeAddition>();
        foreach (var node in _nodes)
        {
            // The weights that read the group: channel j's input weights go into channel i's.
            for (int k = 0; k < node.Inputs.Count; k++)
            {
                if (!_sitesByInput.TryGetValue((node, k), out var sites)) continue;
                foreach (var site in sites.Where(s => s.Role == SiteRole.ConsumerWeight))
                {
                    // Every place the group appears in holds the same channels: add each place's column of j into its column of i.
                    var pjs = site.Layout.PositionsOf(_group.Id, j).ToList();
                    if (pjs.Count == 0) continue;
                    var pis = site.Layout.PositionsOf(_group.Id, i).ToList();
                    if (pis.Count != pjs.Count || RatioOf(node.Input(0)) is not { } r || double.IsNaN(r)) return null;
                    for (int t = 0; t < pjs.Count; t++)
                    {
                        var (from, count) = site.Layout.ElementsOf(pjs[t]);
                        var (to, _) = site.Layout.ElementsOf(pis[t]);
                        additions.Add(new MergeAddition(site.Weight, site.Weight.Tensor.Dims, site.Axis, from, to, count, r));
                    }
                }
            }
            var carrying = node.Outputs.Where(o => _groups.LayoutOf(o)?.PositionOf(_group.Id, j) >= 0).ToList();
            if (carrying.Count == 0) continue;
            var rule = OperatorRules.For(node);
            double ratio = rule?.Ratio(new RatioContext(this, node, _producers.Contains(node))) ?? double.NaN;
            foreach (var output in carrying)
                _ratios[output] = _groups.LayoutOf(output)!.PositionOf(_group.Id, i) >= 0 ? ratio : double.NaN;
        }
        return additions;
    }
}
