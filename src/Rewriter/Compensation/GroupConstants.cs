using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>Per-channel values of the constant inputs of the nodes a group passes through (sliced parameters or broadcast scalars).</summary>
internal sealed class GroupConstants
{
    private readonly Graph _graph;
    private readonly ChannelGroup _group;
    private readonly Func<WeightRef, float[]> _floats;
    private readonly Dictionary<(Node, int), TensorSite> _sites = new();

    public GroupConstants(Graph graph, ChannelGroup group, Func<WeightRef, float[]> floats)
    {
        _graph = graph;
        _group = group;
        _floats = floats;
        foreach (var site in group.Sites.OfType<TensorSite>()) _sites.TryAdd((site.Node, site.InputIndex), site);
    }

    public TensorSite? Site(Node node, int input) => _sites.GetValueOrDefault((node, input));

    /// <summary>
    /// Channel c's value of input <paramref name="input"/> for every channel of the group (NaN where the input
    /// does not hold channel c); null when the input is not a stored float constant that is either sliced
    /// with the group or the same for every channel.
    /// </summary>
    public double[]? Of(Node node, int input)
    {
        if (input >= node.Inputs.Count || node.Input(input).Length == 0) return null;
        var result = new double[_group.Width];
        if (Site(node, input) is { } site)
        {
            var data = _floats(site.Weight);
            long[] dims = site.Weight.Tensor.Dims;
            for (int c = 0; c < result.Length; c++)
            {
                int p = site.Layout.PositionOf(_group.Id, c);
                result[c] = p < 0 ? double.NaN : TensorSlicer.Take(data, dims, site.Axis, site.Layout.ElementsOf(p).ElementOffset, 1)[0];
            }
            return result;
        }
        if (_graph.ResolveWeight(node.Input(input)) is not { Tensor.IsFloating: true } weight) return null;
        var values = _floats(weight);
        if (values.Length == 0 || values.Any(v => v != values[0])) return null;
        Array.Fill(result, values[0]);
        return result;
    }
}
