using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>
/// The main graph: nodes in file order, initializers and Constant-node tensors, and producer /
/// consumer lookups over value names. Edit through the views and the methods here, then call <see cref="Reindex"/>.
/// </summary>
public sealed class Graph
{
    private readonly ExternalDataStore? _external;
    private readonly List<Node> _nodes = [];
    private readonly Dictionary<string, Tensor> _initializers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Node> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Node>> _consumers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _outputs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ValueInfoProto> _valueInfo = new(StringComparer.Ordinal);

    /// <summary>Graph inputs that named an initializer when the graph was read: defaults, not values fed at run time.</summary>
    private readonly HashSet<string> _initializerInputs;

    internal Graph(GraphProto proto, ExternalDataStore? external)
    {
        Proto = proto;
        _external = external;
        Reindex();
        _initializerInputs = new HashSet<string>(proto.Input.Select(i => i.Name).Where(_initializers.ContainsKey), StringComparer.Ordinal);
    }

    internal GraphProto Proto { get; }
    public IReadOnlyList<Node> Nodes => _nodes;
    public IReadOnlyDictionary<string, Tensor> Initializers => _initializers;

    /// <summary>Graph inputs that are fed at run time (initializers listed as inputs excluded).</summary>
    public IEnumerable<GraphValue> RuntimeInputs => Proto.Input.Where(i => !_initializers.ContainsKey(i.Name)).Select(Declared);
    public IEnumerable<GraphValue> Outputs => Proto.Output.Select(Declared);

    /// <summary>Initializer names in stored order (a name stored twice is listed twice).</summary>
    public IReadOnlyList<string> InitializerNames => [.. Proto.Initializer.Select(t => t.Name)];

    /// <summary>Every declared graph input's name, initializers listed as inputs included (a name declared twice is listed twice).</summary>
    public IReadOnlyList<string> InputNames => [.. Proto.Input.Select(i => i.Name)];

    public IReadOnlyList<string> OutputNames => [.. Proto.Output.Select(o => o.Name)];

    /// <summary>Adds a stored tensor (call <see cref="Reindex"/> before looking it up).</summary>
    public void AddInitializer(Tensor tensor) => Proto.Initializer.Add(tensor.Proto);

    /// <summary>Declares a graph input of the given element type and static dims (IR 3 lists every initializer as an input).</summary>
    public void AddInput(string name, int elementType, ReadOnlySpan<long> dims) => Proto.Input.Add(TensorValue(name, elementType, dims));

    /// <summary>Removes the node from the graph (call <see cref="Reindex"/> after).</summary>
    public void RemoveNode(Node node)
    {
        for (int i = 0; i < Proto.Node.Count; i++)
            if (ReferenceEquals(Proto.Node[i], node.Proto)) { Proto.Node.RemoveAt(i); return; }
    }

    /// <summary>A value's declared shape (value_info, inputs, outputs) becomes <paramref name="dims"/>, where it declares a shape at all.</summary>
    public void SetDeclaredDims(string value, ReadOnlySpan<long> dims)
    {
        if (ValueInfo(value)?.Type?.TensorType is not { Shape: { } shape }) return;
        shape.Dim.Clear();
        foreach (long d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
    }

    /// <summary>Dim <paramref name="axis"/> of a value's declared shape of rank <paramref name="rank"/> becomes <paramref name="dim"/>
    /// (null: unknown); a value declaring no shape or another rank is left alone.</summary>
    public void SetDeclaredDim(string value, int rank, int axis, long? dim)
    {
        if (ValueInfo(value)?.Type?.TensorType?.Shape is not { } shape || shape.Dim.Count != rank) return;
        if (dim is long d) shape.Dim[axis].DimValue = d;
        else shape.Dim[axis].ClearValue();
    }

    internal static ValueInfoProto TensorValue(string name, int elementType, ReadOnlySpan<long> dims)
    {
        var shape = new TensorShapeProto();
        foreach (long d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = shape } } };
    }

    public void Reindex()
    {
        _nodes.Clear();
        _initializers.Clear();
        _producers.Clear();
        _consumers.Clear();
        _outputs.Clear();
        _valueInfo.Clear();
        foreach (var t in Proto.Initializer) _initializers[t.Name] = new Tensor(t, _external);
        foreach (var np in Proto.Node)
        {
            var node = new Node(np);
            _nodes.Add(node);
            foreach (var o in np.Output) if (o.Length > 0) _producers[o] = node;
            foreach (var i in np.Input) if (i.Length > 0) AddConsumer(i, node);
            // Values read inside If/Loop/Scan bodies are implicit inputs of the node that owns the body.
            foreach (var captured in CapturedNames(np)) AddConsumer(captured, node);
        }
        foreach (var o in Proto.Output) _outputs.Add(o.Name);
        foreach (var v in Proto.ValueInfo) _valueInfo[v.Name] = v;
        foreach (var v in Proto.Input) _valueInfo[v.Name] = v;
        foreach (var v in Proto.Output) _valueInfo[v.Name] = v;
    }

    private void AddConsumer(string value, Node node)
    {
        if (!_consumers.TryGetValue(value, out var list)) _consumers[value] = list = [];
        if (!list.Contains(node)) list.Add(node);
    }

    public Node? Producer(string value) => _producers.GetValueOrDefault(value);

    public IReadOnlyList<Node> Consumers(string value) =>
        _consumers.TryGetValue(value, out var list) ? list : [];

    /// <summary>The nodes <paramref name="values"/> depend on (their producers and everything before them, subgraph captures included).</summary>
    public HashSet<Node> NodesComputing(IEnumerable<string> values)
    {
        var nodes = new HashSet<Node>();
        var stack = new Stack<string>(values);
        while (stack.Count > 0)
            if (Producer(stack.Pop()) is { } producer && nodes.Add(producer))
                foreach (var input in producer.ReadNames()) stack.Push(input);
        return nodes;
    }

    public bool IsGraphOutput(string value) => _outputs.Contains(value);

    public bool IsRuntimeInput(string value) => Proto.Input.Any(i => i.Name == value) && !_initializers.ContainsKey(value);

    internal ValueInfoProto? ValueInfo(string value) => _valueInfo.GetValueOrDefault(value);

    public Tensor? Initializer(string name) => _initializers.GetValueOrDefault(name);

    /// <summary>The tensor held by a value if it is a constant: an initializer or a Constant node's output.</summary>
    public Tensor? Constant(string value)
    {
        if (_initializers.TryGetValue(value, out var t)) return t;
        if (Producer(value) is { OpType: "Constant" } c && c.Attribute("value")?.T is { } tp) return new Tensor(tp, _external);
        return null;
    }

    /// <summary>Follows Identity and Cast nodes back to a stored constant; null if the value is computed.</summary>
    public WeightRef? ResolveWeight(string value)
    {
        var path = new List<Node>();
        string current = value;
        for (int hop = 0; hop < 16; hop++)
        {
            if (_initializers.TryGetValue(current, out var init)) return new WeightRef(init, path, null);
            var producer = Producer(current);
            if (producer is null) return null;
            if (producer.OpType == "Constant")
                return producer.Attribute("value")?.T is { } tp ? new WeightRef(new Tensor(tp, _external), path, producer) : null;
            if (producer.OpType is "Identity" or "Cast" && producer.Inputs.Count == 1)
            {
                if (producer.OpType == "Cast" && !DataType.IsFloating((int)producer.GetInt("to", 0))) return null;
                path.Add(producer);
                current = producer.Inputs[0];
                continue;
            }
            return null;
        }
        return null;
    }

    /// <summary>
    /// Whether <paramref name="value"/> is a stored weight (<see cref="ResolveWeight"/>) or computed from stored weights
    /// alone within <paramref name="depth"/> nodes: a bias reshaped for broadcasting, a weight transposed by an export
    /// without constant folding.
    /// </summary>
    public bool IsConstant(string value, int depth) =>
        ResolveWeight(value) is not null || depth > 0 && Producer(value) is { } p && p.Inputs.Count > 0
            && p.Inputs.All(i => i.Length == 0 || IsConstant(i, depth - 1));

    /// <summary>Static dims of a value from the model's own value_info (-1 where dynamic or unknown).</summary>
    public long[]? DeclaredShape(string value) => DimsOf(ValueInfo(value));

    private static long[]? DimsOf(ValueInfoProto? info) => info?.Type?.TensorType?.Shape is not { } shape ? null
        : [.. shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1L)];

    private static GraphValue Declared(ValueInfoProto v) => new(v.Name, v.Type?.TensorType?.ElemType ?? 0, DimsOf(v));

    /// <summary>A value or initializer name built from <paramref name="stem"/> that nothing in the graph uses yet.</summary>
    public string UniqueName(string stem)
    {
        string name = new(stem.Select(c => char.IsLetterOrDigit(c) || c is '_' or '.' or '/' ? c : '_').ToArray());
        var taken = new HashSet<string>(Proto.Initializer.Select(t => t.Name).Concat(Proto.Node.SelectMany(n => n.Output))
            .Concat(Proto.Input.Select(i => i.Name)), StringComparer.Ordinal);
        string candidate = name;
        for (int k = 1; taken.Contains(candidate); k++) candidate = $"{name}_{k}";
        return candidate;
    }

    public void RemoveUnusedInitializers()
    {
        var used = new HashSet<string>(_consumers.Keys, StringComparer.Ordinal);
        foreach (var o in Proto.Output) used.Add(o.Name);
        for (int i = Proto.Initializer.Count - 1; i >= 0; i--)
            if (!used.Contains(Proto.Initializer[i].Name)) Proto.Initializer.RemoveAt(i);
        for (int i = Proto.Input.Count - 1; i >= 0; i--)
        {
            string name = Proto.Input[i].Name;
            if (_initializers.ContainsKey(name) && !used.Contains(name)) Proto.Input.RemoveAt(i);
        }
        Reindex();
    }

    /// <summary>
    /// Graph inputs that name initializers take the initializer's current type and dims (a pruned weight's input
    /// would otherwise still declare the old width); such inputs whose initializer is gone are dropped rather than
    /// left as new runtime inputs; with <paramref name="listEveryInitializer"/> (IR version 3, where every
    /// initializer must be an input) initializers added since are listed too.
    /// </summary>
    public void SyncInitializerInputs(bool listEveryInitializer)
    {
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in Proto.Initializer) initializers.TryAdd(t.Name, t);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        bool changed = false;
        for (int i = Proto.Input.Count - 1; i >= 0; i--)
        {
            var input = Proto.Input[i];
            if (initializers.TryGetValue(input.Name, out var t))
            {
                if (!Declares(input, t)) { input.Type = TypeOf(t); changed = true; }
                listed.Add(input.Name);
            }
            else if (_initializerInputs.Contains(input.Name))
            {
                Proto.Input.RemoveAt(i);
                changed = true;
            }
        }
        if (listEveryInitializer)
            foreach (var t in Proto.Initializer)
                if (listed.Add(t.Name))
                {
                    Proto.Input.Add(new ValueInfoProto { Name = t.Name, Type = TypeOf(t) });
                    _initializerInputs.Add(t.Name);
                    changed = true;
                }
        if (changed) Reindex();
    }

    private static bool Declares(ValueInfoProto input, TensorProto t) =>
        input.Type?.TensorType is { } tt && tt.ElemType == t.DataType && tt.Shape is { } shape && shape.Dim.Count == t.Dims.Count &&
        shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1).SequenceEqual(t.Dims);

    private static TypeProto TypeOf(TensorProto t)
    {
        var shape = new TensorShapeProto();
        foreach (long d in t.Dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = t.DataType, Shape = shape } };
    }

    /// <summary>Names a node's subgraphs read from the enclosing scope.</summary>
    private static IEnumerable<string> CapturedNames(NodeProto node)
    {
        foreach (var a in node.Attribute)
        {
            if (a.G is { } g) foreach (var n in CapturedNames(g)) yield return n;
            foreach (var sub in a.Graphs) foreach (var n in CapturedNames(sub)) yield return n;
        }
    }

    private static HashSet<string> CapturedNames(GraphProto g)
    {
        var defined = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in g.Input) defined.Add(i.Name);
        foreach (var t in g.Initializer) defined.Add(t.Name);
        foreach (var n in g.Node) foreach (var o in n.Output) defined.Add(o);
        var captured = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in g.Node)
        {
            foreach (var i in n.Input) if (i.Length > 0 && !defined.Contains(i)) captured.Add(i);
            foreach (var inner in CapturedNames(n)) if (!defined.Contains(inner)) captured.Add(inner);
        }
        foreach (var o in g.Output) if (!defined.Contains(o.Name)) captured.Add(o.Name);
        return captured;
    }
}
