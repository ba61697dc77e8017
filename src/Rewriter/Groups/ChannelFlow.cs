using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The state of one channel analysis: the layout of every tensor that carries channels, the channel
/// sets (a union-find: coupled sets are united), their freeze reasons and the slice sites found so far.
/// Rules read and extend it one node at a time, in graph order.
/// </summary>
internal sealed class ChannelFlow
{
    private readonly IReadOnlyDictionary<string, long[]>? _shapes;
    private readonly Dictionary<string, ChannelLayout> _layouts = new(StringComparer.Ordinal);
    private readonly List<int> _parent = [];
    private readonly List<int> _width = [];
    private readonly List<List<Node>> _producers = [];
    private readonly List<List<Node>> _depthwise = [];
    private readonly List<List<string>> _reasons = [];
    private readonly List<SliceSite> _sites = [];
    private readonly Dictionary<(TensorProto, int), TensorSite> _firstSiteByTensorAxis = new(new TensorAxisComparer());

    public ChannelFlow(Graph graph, IReadOnlyDictionary<string, long[]>? shapes, long opset)
    {
        Graph = graph;
        _shapes = shapes;
        Opset = opset;
    }

    public Graph Graph { get; }

    /// <summary>The default-domain opset, 0 when unknown (rules then prefer what the node itself says).</summary>
    public long Opset { get; }

    public IReadOnlyDictionary<string, ChannelLayout> Layouts => _layouts;
    public IReadOnlyList<SliceSite> Sites => _sites;
    public int SetCount => _parent.Count;

    // ---- layouts ----

    public ChannelLayout? Layout(string value) => value.Length == 0 ? null : _layouts.GetValueOrDefault(value);

    public void SetLayout(string value, ChannelLayout layout)
    {
        if (value.Length > 0) _layouts[value] = layout;
    }

    /// <summary>The tracked inputs of a node, with their input index.</summary>
    public IEnumerable<(int Index, ChannelLayout Layout)> TrackedInputs(Node node)
    {
        for (int i = 0; i < node.Inputs.Count; i++)
            if (Layout(node.Inputs[i]) is { } layout) yield return (i, layout);
    }

    // ---- channel sets ----

    public int NewSet(int width, Node producer)
    {
        if (width <= 0) throw new ArgumentException($"{producer} has {width} output channels");
        _parent.Add(_parent.Count);
        _width.Add(width);
        _producers.Add([producer]);
        _depthwise.Add([]);
        _reasons.Add([]);
        return _parent.Count - 1;
    }

    public int Root(int set)
    {
        while (_parent[set] != set)
        {
            _parent[set] = _parent[_parent[set]];
            set = _parent[set];
        }
        return set;
    }

    public int Width(int set) => _width[Root(set)];
    public IReadOnlyList<Node> Producers(int set) => _producers[Root(set)];
    public IReadOnlyList<Node> Depthwise(int set) => _depthwise[Root(set)];
    public IReadOnlyList<string> Reasons(int set) => _reasons[Root(set)];
    public bool IsFrozen(int set) => _reasons[Root(set)].Count > 0;

    public void AddDepthwise(Node node, ChannelLayout layout)
    {
        foreach (int g in layout.Groups)
            if (!_depthwise[Root(g)].Contains(node)) _depthwise[Root(g)].Add(node);
    }

    public void Freeze(int set, string reason)
    {
        var reasons = _reasons[Root(set)];
        if (!reasons.Contains(reason)) reasons.Add(reason);
    }

    public void Freeze(ChannelLayout? layout, string reason)
    {
        if (layout is null) return;
        foreach (var s in layout.Segments) Freeze(s.Group, reason);
    }

    /// <summary>Freezes every tracked input of <paramref name="node"/>.</summary>
    public void FreezeInputs(Node node, string reason)
    {
        foreach (var (_, layout) in TrackedInputs(node)) Freeze(layout, reason);
    }

    private void UnionSets(int a, int b)
    {
        int ra = Root(a), rb = Root(b);
        if (ra == rb) return;
        if (_width[ra] != _width[rb]) throw new InvalidOperationException($"uniting channel sets of widths {_width[ra]} and {_width[rb]}");
        // Keep the older root so producers stay in graph order.
        if (rb < ra) (ra, rb) = (rb, ra);
        _parent[rb] = ra;
        foreach (var p in _producers[rb]) if (!_producers[ra].Contains(p)) _producers[ra].Add(p);
        foreach (var p in _depthwise[rb]) if (!_depthwise[ra].Contains(p)) _depthwise[ra].Add(p);
        foreach (var r in _reasons[rb]) if (!_reasons[ra].Contains(r)) _reasons[ra].Add(r);
    }

    /// <summary>
    /// Couples two layouts channel by channel (both sides of a residual Add, a tensor read twice through a
    /// shared weight). Only whole sets with matching boundaries can be united; anything else freezes both.
    /// </summary>
    public void Unite(ChannelLayout a, ChannelLayout b, string where)
    {
        if (SameChannels(a, b)) return;
        if (a.Channels != b.Channels)
        {
            Freeze(a, $"{where} joins tensors of {a.Channels} and {b.Channels} channels");
            Freeze(b, $"{where} joins tensors of {a.Channels} and {b.Channels} channels");
            return;
        }
        bool aligned = a.Segments.Length == b.Segments.Length;
        for (int i = 0; aligned && i < a.Segments.Length; i++)
        {
            ChannelSegment x = a.Segments[i], y = b.Segments[i];
            aligned = x.Length == y.Length && x.Inner == y.Inner && x.Start == 0 && y.Start == 0 && x.Length == Width(x.Group) && y.Length == Width(y.Group);
        }
        if (!aligned)
        {
            Freeze(a, $"{where} joins channel ranges that do not line up");
            Freeze(b, $"{where} joins channel ranges that do not line up");
            return;
        }
        for (int i = 0; i < a.Segments.Length; i++) UnionSets(a.Segments[i].Group, b.Segments[i].Group);
    }

    /// <summary>Whether two layouts hold the same channels of the same sets in the same order.</summary>
    public bool SameChannels(ChannelLayout a, ChannelLayout b)
    {
        if (a.Segments.Length != b.Segments.Length) return false;
        for (int i = 0; i < a.Segments.Length; i++)
        {
            ChannelSegment x = a.Segments[i], y = b.Segments[i];
            if (Root(x.Group) != Root(y.Group) || x.Start != y.Start || x.Length != y.Length || x.Inner != y.Inner) return false;
        }
        return true;
    }

    // ---- sites ----

    /// <summary>
    /// Registers the slicing of the constant at input <paramref name="inputIndex"/> along <paramref name="axis"/>.
    /// Returns false (and freezes <paramref name="layout"/>) when the input is not a stored float tensor or its
    /// size along the axis does not match. A layer weight already sliced on that axis elsewhere couples both layouts.
    /// </summary>
    public bool AddTensorSite(Node node, int inputIndex, int axis, ChannelLayout layout, SiteRole role)
    {
        string value = node.Input(inputIndex);
        var weight = value.Length == 0 ? null : Graph.ResolveWeight(value);
        if (weight is null || !weight.Tensor.IsFloating)
        {
            Freeze(layout, $"{node} input {inputIndex} ('{value}') is not a stored float tensor");
            return false;
        }
        long[] dims = weight.Tensor.Dims;
        if (axis < 0 || axis >= dims.Length)
        {
            Freeze(layout, $"{node} input '{value}' has rank {dims.Length}, no axis {axis} to slice");
            return false;
        }
        var resolved = ResolveInner(layout, dims[axis]);
        if (resolved is null)
        {
            Freeze(layout, $"{node} input '{value}' has {dims[axis]} elements on axis {axis}, not {DescribeExtent(layout)}");
            return false;
        }
        var site = new TensorSite(node, inputIndex, weight, axis, resolved, role);
        // A layer weight read by several nodes (the RPN head at every FPN level) makes them one layer:
        // couple them. Biases and per-channel parameters that merely hold equal values (exporters share
        // identical constants) are not coupled; the rewriter gives each selection its own copy.
        if (role is SiteRole.ProducerWeight or SiteRole.ConsumerWeight or SiteRole.DepthwiseWeight)
        {
            if (_firstSiteByTensorAxis.TryGetValue((weight.Tensor.Proto, axis), out var first))
                Unite(first.Layout, resolved, $"weight '{weight.Tensor.Name}' shared by {first.Node} and {node}");
            else _firstSiteByTensorAxis[(weight.Tensor.Proto, axis)] = site;
        }
        _sites.Add(site);
        return true;
    }

    public void AddCountSite(CountSite site) => _sites.Add(site);

    /// <summary>The layout with unknown inner sizes (a flatten of unknown H·W) filled in so that it spans <paramref name="extent"/> elements; null if impossible.</summary>
    public static ChannelLayout? ResolveInner(ChannelLayout layout, long extent)
    {
        if (layout.InnerKnown) return layout.Extent == extent ? layout : null;
        long known = layout.Segments.Where(s => s.Inner > 0).Sum(s => s.Length * s.Inner);
        long unknownChannels = layout.Segments.Where(s => s.Inner == 0).Sum(s => (long)s.Length);
        long rest = extent - known;
        if (rest <= 0 || rest % unknownChannels != 0) return null;
        long inner = rest / unknownChannels;
        return layout.WithSegments(layout.Segments.Select(s => s.Inner == 0 ? s with { Inner = inner } : s));
    }

    private static string DescribeExtent(ChannelLayout layout) =>
        layout.InnerKnown ? $"{layout.Extent}" : $"a multiple fitting {layout.Channels} channels";

    // ---- shapes and constants ----

    /// <summary>Concrete dims of a value (from the probed shapes, else the model's value_info; -1 where unknown).</summary>
    public long[]? Shape(string value)
    {
        if (value.Length == 0) return null;
        if (_shapes is not null && _shapes.TryGetValue(value, out var s)) return s;
        if (Graph.Constant(value) is { } c) return c.Dims;
        if (Graph.ResolveWeight(value) is { } w) return w.Tensor.Dims;
        return Graph.DeclaredShape(value);
    }

    public int? Rank(string value) => Layout(value)?.Rank ?? Shape(value)?.Length;

    /// <summary>An int64/int32 constant input as numbers, or null when it is computed or absent.</summary>
    public long[]? ConstantInts(string value)
    {
        if (value.Length == 0 || Graph.Constant(value) is not { } t) return null;
        return t.DataType is DataType.Int64 or DataType.Int32 ? t.ToInt64s() : null;
    }

    private sealed class TensorAxisComparer : IEqualityComparer<(TensorProto, int)>
    {
        public bool Equals((TensorProto, int) x, (TensorProto, int) y) => ReferenceEquals(x.Item1, y.Item1) && x.Item2 == y.Item2;
        public int GetHashCode((TensorProto, int) obj) => HashCode.Combine(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj.Item1), obj.Item2);
    }
}
