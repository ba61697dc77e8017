using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>A new model of one graph, built piece by piece (the single layers that latency measurement times alone).</summary>
public sealed class ModelBuilder
{
    private readonly ModelProto _model;

    public ModelBuilder(string graphName, string producerName, long irVersion, long opset)
    {
        _model = new ModelProto { IrVersion = irVersion, ProducerName = producerName, Graph = new GraphProto { Name = graphName } };
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
    }

    /// <summary>A node of <paramref name="template"/>'s operator with copies of its attributes, but for <paramref name="without"/>.</summary>
    public Node AddNodeLike(Node template, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, string? without = null)
    {
        var node = new NodeProto { OpType = template.OpType, Domain = template.Domain, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        foreach (var a in template.Proto.Attribute)
            if (a.Name != without) node.Attribute.Add(a.Clone());
        _model.Graph.Node.Add(node);
        return new Node(node);
    }

    public void AddInput(string name, int elementType, ReadOnlySpan<long> dims) => _model.Graph.Input.Add(Graph.TensorValue(name, elementType, dims));

    /// <summary>A graph output without a declared type (ONNX Runtime infers it).</summary>
    public void AddOutput(string name) => _model.Graph.Output.Add(new ValueInfoProto { Name = name });

    public void AddInitializer(Tensor tensor) => _model.Graph.Initializer.Add(tensor.Proto);

    public byte[] ToBytes() => _model.ToByteArray();
}
