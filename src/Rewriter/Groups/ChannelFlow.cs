using System.Collections.Immutable;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// The state of one channel analysis: the layout of every tensor that carries channels, the channel
/// sets (a union-find: coupled sets are united), their freeze reasons, block ties and the slice sites
/// found so far. Rules read and extend it one node at a time, in graph order.
/// <para>
/// Sub-ranges: a producer's channels may be cut into several sets up front (<see cref="Partitions"/>), so that
/// parts of a Split that meet other channels again (a C2f's residual half) are whole sets. An analysis that finds
/// ranges which do not line up records where the sets would have to be cut (<see cref="RequestedCuts"/>); the
/// next analysis starts with those cuts (see <see cref="ChannelGroups.Find(Graph, IReadOnlyDictionary{string, long[]}?, long)"/>).
/// </para>
/// </summary>
internal sealed class ChannelFlow
{
    private readonly IReadOnlyDictionary<string, long[]>? _shapes;
    private readonly IReadOnlyDictionary<Node, int[]> _partitions;
    private readonly Dictionary<Node, SortedSet<int>> _requestedCuts = new(ReferenceEqualityComparer.Instance);
    private readonly List<int> _blocks = [];
    private readonly List<(Node Node, int Start)> _creator = [];
    private readonly Dictionary<string, ChannelLayout> _layouts = new(StringComparer.Ordinal);
    private readonly List<int> _parent = [];
    private readonly List<int> _width = [];
    private readonly List<List<Node>> _producers = [];
    private readonly List<List<Node>> _depthwise = [];
    private readonly List<List<string>> _reasons = [];
    private readonly List<SliceSite> _sites = [];
    private readonly Dictionary<(Tensor, int), TensorSite> _firstSiteByTensorAxis = new();

    /// <param name="partitions">Per producer node, the channel positions where its output is cut into separate sets.</param>
    public ChannelFlow(Graph graph, IReadOnlyDictionary<string, long[]>? shapes, long opset, IReadOnlyDictionary<Node, int[]>? partitions = null)
    {
        Graph = graph;
        _shapes = shapes;
        Opset = opset;
        _partitions = partitions ?? new Dictionary<Node, int[]>();
    }

    public IReadOnlyDictionary<Node, int[]> Partitions => _partitions;

    /// <summary>Per producer node, cut positions in its output that this analysis found necessary and were not in <see cref="Partitions"/>.</summary>
    public IReadOnlyDictionary<Node, SortedSet<int>> RequestedCuts => _requestedCuts;

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

    private int NewSet(int width, Node producer, int start)
    {
        if (width <= 0) throw new ArgumentException($"{producer} has {width} output channels");
        _parent.Add(_parent.Count);
        _width.Add(width);
        _producers.Add([producer]);
        _depthwise.Add([]);
        _reasons.Add([]);
        _blocks.Add(1);
        _creator.Add((producer, start));
        return _parent.Count - 1;
    }

    /// <summary>
    /// The layout of a producer's <paramref name="width"/> new output channels on axis <paramref name="axis"/>:
    /// one set, or one per range where <see cref="Partitions"/> cut the node's output. With
    /// <paramref name="blocks"/> &gt; 1 (a grouped conv's groups) every range keeps equal counts per block; a cut
    /// inside a block freezes.
    /// </summary>
    public ChannelLayout NewChannels(Node producer, int width, int rank, int axis, int blocks = 1)
    {
        if (blocks < 1 || width % blocks != 0) throw new ArgumentException($"{producer}: {width} channels do not split into {blocks} blocks");
        int[] cuts = _partitions.TryGetValue(producer, out var c) ? [.. c.Where(x => x > 0 && x < width)] : [];
        var segments = ImmutableArray.CreateBuilder<ChannelSegment>();
        int from = 0, blockWidth = width / blocks;
        foreach (int to in cuts.Append(width))
        {
            int set = NewSet(to - from, producer, from);
            if (blocks > 1)
            {
                if (from % blockWidth != 0 || to % blockWidth != 0) Freeze(set, $"{producer}: channel range [{from},{to}) cuts a conv group of {blockWidth}");
                else _blocks[set] = (to - from) / blockWidth;
            }
            segments.Add(new ChannelSegment(set, 0, to - from, 1));
            from = to;
        }
        return new ChannelLayout(rank, axis, segments.ToImmutable());
    }

    /// <summary>Equal contiguous blocks of a set that must keep equal channel counts (1: unconstrained).</summary>
    public int Blocks(int set) => _blocks[Root(set)];

    /// <summary>
    /// Ties the channels of <paramref name="layout"/> (one whole set) into <paramref name="blocks"/> equal blocks that
    /// keep equal counts (the conv groups of a grouped conv that reads them). Returns false, and freezes, when it cannot.
    /// </summary>
    public bool Tie(ChannelLayout layout, int blocks, string where)
    {
        if (layout.Segments is not [var s] || s.Start != 0 || s.Length != Width(s.Group) || !layout.IsPlain)
        {
            Freeze(layout, $"{where} reads its conv groups from channels laid out as {layout}");
            return false;
        }
        int root = Root(s.Group);
        int combined = CombineBlocks(_blocks[root], blocks, _width[root]);
        if (combined < 0 || combined == _width[root])
        {
            Freeze(root, combined < 0 ? $"{where}: conv groups of {_width[root] / blocks} do not line up with other groups of these channels"
                : $"{where} has one channel per conv group");
            return false;
        }
        _blocks[root] = combined;
        return true;
    }

    // Equal counts in blocks of both partitions hold when they hold in the common refinement (lcm of the counts).
    private static int CombineBlocks(int a, int b, int width)
    {
        long l = (long)a / Gcd(a, b) * b;
        return l <= width && width % l == 0 ? (int)l : -1;
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

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
        int blocks = CombineBlocks(_blocks[ra], _blocks[rb], _width[ra]);
        if (blocks < 0) _reasons[ra].Add($"conv groups of {_width[ra] / _blocks[ra]} and {_width[rb] / _blocks[rb]} channels do not line up");
        else _blocks[ra] = blocks;
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
            RequestCuts(a, b);
            Freeze(a, $"{where} joins channel ranges that do not line up");
            Freeze(b, $"{where} joins channel ranges that do not line up");
            return;
        }
        for (int i = 0; i < a.Segments.Length; i++) UnionSets(a.Segments[i].Group, b.Segments[i].Group);
    }

    /// <summary>
    /// Two layouts of equal channel count that do not line up: records, for every set in them, the cuts that make
    /// both sides whole sets with the same boundaries (each segment's ends and the other side's boundaries within
    /// it), as positions in the output of the producer that created the set and of every set coupled to it.
    /// </summary>
    private void RequestCuts(ChannelLayout a, ChannelLayout b)
    {
        if (!a.IsPlain || !b.IsPlain) return;
        var boundaries = new SortedSet<int>();
        foreach (var layout in new[] { a, b })
        {
            int offset = 0;
            foreach (var s in layout.Segments) boundaries.Add(offset += s.Length);
        }
        foreach (var layout in new[] { a, b })
        {
            int offset = 0;
            foreach (var s in layout.Segments)
            {
                var cuts = new List<int> { s.Start, s.End };
                cuts.AddRange(boundaries.Where(p => p > offset && p < offset + s.Length).Select(p => s.Start + p - offset));
                int root = Root(s.Group);
                for (int member = 0; member < _parent.Count; member++)
                {
                    if (Root(member) != root) continue;
                    var (node, start) = _creator[member];
                    foreach (int cut in cuts)
                    {
                        if (cut <= 0 || cut >= _width[member]) continue;
                        int position = start + cut;
                        if (_partitions.TryGetValue(node, out var known) && known.Contains(position)) continue;
                        if (!_requestedCuts.TryGetValue(node, out var set)) _requestedCuts[node] = set = [];
                        set.Add(position);
                    }
                }
                offset += s.Length;
            }
        }
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
            if (_firstSiteByTensorAxis.TryGetValue((weight.Tensor, axis), out var first))
                Unite(first.Layout, resolved, $"weight '{weight.Tensor.Name}' shared by {first.Node} and {node}");
            else _firstSiteByTensorAxis[(weight.Tensor, axis)] = site;
        }
        _sites.Add(site);
        return true;
    }

    public void AddCountSite(CountSite site) => _sites.Add(site);

    /// <summary>
    /// Registers the block-wise slicing of a grouped conv's input axis (see <see cref="GroupedInputSite"/>). Returns
    /// false, and freezes, when the weight is not a stored float tensor of the right size read by this node alone.
    /// </summary>
    public bool AddGroupedInputSite(Node node, int inputIndex, int axis, int outputAxis, int blocks, ChannelLayout layout)
    {
        string value = node.Input(inputIndex);
        var weight = Graph.ResolveWeight(value);
        if (weight is null || !weight.Tensor.IsFloating || axis >= weight.Tensor.Rank || weight.Tensor.Dims[axis] * blocks != layout.Channels)
        {
            Freeze(layout, $"{node} input {inputIndex} ('{value}') is not a stored float tensor of {layout.Channels}/{blocks} channels per group");
            return false;
        }
        if (Graph.IsGraphOutput(WeightReaders.StoredName(weight)) || WeightReaders.Of(Graph, WeightReaders.StoredName(weight)).Count() != 1)
        {
            Freeze(layout, $"{node} shares its grouped weight '{weight.Tensor.Name}'");
            return false;
        }
        _sites.Add(new GroupedInputSite(node, inputIndex, weight, axis, outputAxis, blocks, layout));
        return true;
    }

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
}
