using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>
/// One operator of the graph; a thin view over its NodeProto, which stays the source of truth. Views are made
/// afresh by <see cref="Graph.Reindex"/>, so two views are equal when they view the same operator.
/// </summary>
public sealed class Node : IEquatable<Node>
{
    internal Node(NodeProto proto) => Proto = proto;

    internal NodeProto Proto { get; }
    public string Name => Proto.Name;
    public string OpType => Proto.OpType;
    public string Domain => Proto.Domain;

    /// <summary>Input value names, in order (editable: the node reads what the list says).</summary>
    public IList<string> Inputs => Proto.Input;

    /// <summary>Output value names, in order (editable).</summary>
    public IList<string> Outputs => Proto.Output;

    /// <summary>A name that identifies the node in reports even when the exporter left Name empty.</summary>
    public string Id => Name.Length > 0 ? Name : $"{OpType}:{(Outputs.Count > 0 ? Outputs[0] : "?")}";

    /// <summary>The i-th input name, or "" when absent (ONNX marks omitted optional inputs with "").</summary>
    public string Input(int i) => i < Inputs.Count ? Inputs[i] : "";

    public bool IsStandard => Domain is "" or "ai.onnx";

    internal AttributeProto? Attribute(string name)
    {
        foreach (var a in Proto.Attribute) if (a.Name == name) return a;
        return null;
    }

    public bool HasAttribute(string name) => Attribute(name) is not null;

    public long GetInt(string name, long fallback) => Attribute(name) is { } a ? a.I : fallback;
    public float GetFloat(string name, float fallback) => Attribute(name) is { } a ? a.F : fallback;
    public string? GetString(string name) => Attribute(name) is { } a ? a.S.ToStringUtf8() : null;
    public long[]? GetInts(string name) => Attribute(name) is { } a ? [.. a.Ints] : null;
    public float[]? GetFloats(string name) => Attribute(name) is { } a ? [.. a.Floats] : null;

    /// <summary>Every attribute in protobuf's JSON form, in order: what makes two nodes of one operator behave alike.</summary>
    public string AttributesText => string.Join(",", Proto.Attribute.Select(a => a.ToString()));

    public bool HasSubgraphs
    {
        get
        {
            foreach (var a in Proto.Attribute) if (a.G is not null || a.Graphs.Count > 0) return true;
            return false;
        }
    }

    /// <summary>The operator types of the nodes in the node's subgraphs, nested ones included (If, Loop, Scan bodies).</summary>
    public IEnumerable<string> SubgraphOpTypes()
    {
        var stack = new Stack<GraphProto>(Proto.Attribute.SelectMany(a => a.Graphs.Prepend(a.G)).Where(g => g is not null));
        while (stack.Count > 0)
            foreach (var n in stack.Pop().Node)
            {
                yield return n.OpType;
                foreach (var a in n.Attribute)
                {
                    if (a.G is not null) stack.Push(a.G);
                    foreach (var g in a.Graphs) stack.Push(g);
                }
            }
    }

    /// <summary>Every value the node reads: its inputs and whatever its subgraphs read from outside (over-approximated: a
    /// subgraph's own values are included too).</summary>
    public IEnumerable<string> ReadNames() => ReadNames(Proto);

    private static IEnumerable<string> ReadNames(NodeProto node)
    {
        foreach (var i in node.Input) if (i.Length > 0) yield return i;
        foreach (var a in node.Attribute)
        {
            if (a.G is { } g) foreach (var n in SubgraphReads(g)) yield return n;
            foreach (var sg in a.Graphs) foreach (var n in SubgraphReads(sg)) yield return n;
        }
    }

    private static IEnumerable<string> SubgraphReads(GraphProto g)
    {
        foreach (var n in g.Node)
            foreach (var name in ReadNames(n)) yield return name;
        foreach (var o in g.Output) yield return o.Name;
    }

    public void SetInts(string name, IEnumerable<long> values)
    {
        var a = Ensure(name, AttributeProto.Types.AttributeType.Ints);
        a.Ints.Clear();
        a.Ints.Add(values);
    }

    public void SetInt(string name, long value) => Ensure(name, AttributeProto.Types.AttributeType.Int).I = value;

    public void SetFloat(string name, float value) => Ensure(name, AttributeProto.Types.AttributeType.Float).F = value;

    /// <summary>The attribute, added (empty, of <paramref name="type"/>) when the node has none of that name.</summary>
    private AttributeProto Ensure(string name, AttributeProto.Types.AttributeType type)
    {
        var a = Attribute(name);
        if (a is null)
        {
            a = new AttributeProto { Name = name, Type = type };
            Proto.Attribute.Add(a);
        }
        return a;
    }

    public bool Equals(Node? other) => other is not null && ReferenceEquals(Proto, other.Proto);
    public override bool Equals(object? obj) => Equals(obj as Node);
    public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Proto);

    public override string ToString() => $"{OpType} '{Id}'";
}
