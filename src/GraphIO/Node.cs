using Google.Protobuf.Collections;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>One operator of the graph; a thin view over its NodeProto, which stays the source of truth.</summary>
public sealed class Node(NodeProto proto)
{
    public NodeProto Proto { get; } = proto;
    public string Name => Proto.Name;
    public string OpType => Proto.OpType;
    public string Domain => Proto.Domain;
    public RepeatedField<string> Inputs => Proto.Input;
    public RepeatedField<string> Outputs => Proto.Output;

    /// <summary>A name that identifies the node in reports even when the exporter left Name empty.</summary>
    public string Id => Name.Length > 0 ? Name : $"{OpType}:{(Outputs.Count > 0 ? Outputs[0] : "?")}";

    /// <summary>The i-th input name, or "" when absent (ONNX marks omitted optional inputs with "").</summary>
    public string Input(int i) => i < Inputs.Count ? Inputs[i] : "";

    public bool IsStandard => Domain is "" or "ai.onnx";

    public AttributeProto? Attribute(string name)
    {
        foreach (var a in Proto.Attribute) if (a.Name == name) return a;
        return null;
    }

    public long GetInt(string name, long fallback) => Attribute(name) is { } a ? a.I : fallback;
    public float GetFloat(string name, float fallback) => Attribute(name) is { } a ? a.F : fallback;
    public string? GetString(string name) => Attribute(name) is { } a ? a.S.ToStringUtf8() : null;
    public long[]? GetInts(string name) => Attribute(name) is { } a ? [.. a.Ints] : null;

    public bool HasSubgraphs
    {
        get
        {
            foreach (var a in Proto.Attribute) if (a.G is not null || a.Graphs.Count > 0) return true;
            return false;
        }
    }

    public void SetInts(string name, IEnumerable<long> values)
    {
        var a = Attribute(name);
        if (a is null)
        {
            a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            Proto.Attribute.Add(a);
        }
        a.Ints.Clear();
        a.Ints.Add(values);
    }

    public void SetInt(string name, long value)
    {
        var a = Attribute(name);
        if (a is null)
        {
            a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int };
            Proto.Attribute.Add(a);
        }
        a.I = value;
    }

    public override string ToString() => $"{OpType} '{Id}'";
}
