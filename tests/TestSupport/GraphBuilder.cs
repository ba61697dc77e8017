using Google.Protobuf;
using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.TestSupport;

/// <summary>
/// The tests' one ONNX graph builder: initializers, Constant nodes, nodes with attributes, typed inputs and
/// outputs. Two styles: generated names (<see cref="Node(string, string[], (string, object)[])"/> returns the new
/// value), or given names, chained (<see cref="WithNode"/>, <see cref="WithInitializer"/>, ...).
/// </summary>
public sealed class GraphBuilder
{
    private readonly ModelProto _model;
    private readonly Random _random;
    private int _next;

    public GraphBuilder(long opset = 13, int seed = 1, int elementType = DataType.Float)
    {
        _random = new Random(seed);
        ElementType = elementType;
        _model = new ModelProto { IrVersion = 8, ProducerName = "onnxslim-tests", Graph = new GraphProto { Name = "test" } };
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
    }

    /// <summary>The element type of inputs, outputs and weights unless a call says otherwise.</summary>
    public int ElementType { get; }

    internal GraphProto Graph => _model.Graph;

    public string Fresh(string stem) => $"{stem}_{_next++}";

    public string Input(string name, params long[] shape)
    {
        Graph.Input.Add(ValueInfo(name, ElementType, shape));
        return name;
    }

    public void Output(string value, params long[] shape) => Graph.Output.Add(ValueInfo(value, ElementType, shape));

    /// <summary>Declares a value's shape in value_info (as exporters do).</summary>
    public void Declare(string value, params long[] shape) => Graph.ValueInfo.Add(ValueInfo(value, ElementType, shape));

    // ---- given names, chained ----

    public GraphBuilder WithInput(string name, params long[] shape)
    {
        Input(name, shape);
        return this;
    }

    /// <summary>A graph output whose shape is left to inference.</summary>
    public GraphBuilder WithOutput(string name)
    {
        Graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = ElementType } } });
        return this;
    }

    public GraphBuilder WithInitializer(string name, long[] dims, float[] values)
    {
        Graph.Initializer.Add(Tensor.FromFloats(name, dims, values, ElementType).Proto);
        return this;
    }

    public GraphBuilder WithNode(string op, string name, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        AddAttributes(node, attributes);
        Graph.Node.Add(node);
        return this;
    }

    /// <summary><paramref name="count"/> standard normal values times <paramref name="scale"/>.</summary>
    public float[] Normal(int count, double scale = 1) => Normal((long)count, scale);

    public float[] Normal(long count, double scale)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++) values[i] = (float)(scale * StandardNormal.Next(_random));
        return values;
    }

    public float[] Uniform(long count, double low, double high) =>
        [.. Enumerable.Range(0, (int)count).Select(_ => (float)(low + (high - low) * _random.NextDouble()))];

    /// <summary>An initializer; random normal values with variance 1/fan-in-like scale when none are given.</summary>
    public string Init(string stem, long[] dims, float[]? values = null, int? dataType = null)
    {
        long n = dims.Aggregate(1L, (a, b) => a * b);
        long fanIn = dims.Length > 1 ? n / dims[0] : 1;
        var t = Tensor.FromFloats(Fresh(stem), dims, values ?? Normal(n, 1.0 / Math.Sqrt(fanIn)), dataType ?? ElementType);
        Graph.Initializer.Add(t.Proto);
        return t.Name;
    }

    public string Ints(string stem, params long[] values)
    {
        var t = Tensor.FromInt64s(Fresh(stem), [values.Length], values);
        Graph.Initializer.Add(t.Proto);
        return t.Name;
    }

    /// <summary>A Constant node holding a float tensor (PaddleOCR style weights).</summary>
    public string ConstantNode(string stem, long[] dims, float[]? values = null)
    {
        long n = dims.Aggregate(1L, (a, b) => a * b);
        long fanIn = dims.Length > 1 ? n / dims[0] : 1;
        var t = Tensor.FromFloats(Fresh(stem + "_value"), dims, values ?? Normal(n, 1.0 / Math.Sqrt(fanIn)));
        var node = new NodeProto { OpType = "Constant", Name = Fresh(stem + "_const") };
        node.Output.Add(Fresh(stem));
        node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = t.Proto });
        Graph.Node.Add(node);
        return node.Output[0];
    }

    public string ConstantInts(string stem, params long[] values)
    {
        var t = Tensor.FromInt64s(Fresh(stem + "_value"), [values.Length], values);
        var node = new NodeProto { OpType = "Constant", Name = Fresh(stem + "_const") };
        node.Output.Add(Fresh(stem));
        node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = t.Proto });
        Graph.Node.Add(node);
        return node.Output[0];
    }

    /// <summary>Adds a node; attributes are long, float, string, long[] or float[]. Returns its first output.</summary>
    public string Node(string op, string[] inputs, params (string Name, object Value)[] attributes) =>
        NodeWithOutputs(op, inputs, 1, attributes)[0];

    public string[] NodeWithOutputs(string op, string[] inputs, int outputs, params (string Name, object Value)[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = Fresh(op) };
        node.Input.Add(inputs);
        for (int k = 0; k < outputs; k++) node.Output.Add(Fresh(op.ToLowerInvariant()));
        AddAttributes(node, attributes);
        Graph.Node.Add(node);
        return [.. node.Output];
    }

    private static void AddAttributes(NodeProto node, (string Name, object Value)[] attributes)
    {
        foreach (var (name, value) in attributes)
        {
            var a = new AttributeProto { Name = name };
            switch (value)
            {
                case long l: a.Type = AttributeProto.Types.AttributeType.Int; a.I = l; break;
                case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
                case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
                case string s: a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(s); break;
                case long[] ls: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.Add(ls); break;
                case float[] fs: a.Type = AttributeProto.Types.AttributeType.Floats; a.Floats.Add(fs); break;
                default: throw new ArgumentException($"attribute {name} has unsupported value {value}");
            }
            node.Attribute.Add(a);
        }
    }

    // ---- common layers ----

    public string Conv(string x, int cin, int cout, int k = 3, int group = 1, bool bias = true, string? weight = null, int stride = 1)
    {
        weight ??= Init("w", [cout, cin / group, k, k]);
        var inputs = bias ? new[] { x, weight, Init("b", [cout], Normal(cout, 0.1)) } : [x, weight];
        return Node("Conv", inputs, ("kernel_shape", new long[] { k, k }), ("pads", new long[] { k / 2, k / 2, k / 2, k / 2 }),
            ("strides", new long[] { stride, stride }), ("group", (long)group));
    }

    public string BatchNorm(string x, int c) =>
        Node("BatchNormalization", [x, Init("gamma", [c], Uniform(c, 0.5, 1.5)), Init("beta", [c], Normal(c, 0.2)),
            Init("mean", [c], Normal(c, 0.2)), Init("var", [c], Uniform(c, 0.5, 1.5))], ("epsilon", 1e-5f));

    public string Relu(string x) => Node("Relu", [x]);

    /// <summary>SiLU as exporters write it: Mul(x, Sigmoid(x)).</summary>
    public string Silu(string x) => Node("Mul", [x, Node("Sigmoid", [x])]);

    internal ModelProto Build() => _model;
    public byte[] Bytes() => _model.ToByteArray();
    public OnnxModel Model() => OnnxModel.FromBytes(_model.ToByteArray());

    /// <summary>The model as built so far, written to <paramref name="path"/>.</summary>
    public string Save(string path)
    {
        File.WriteAllBytes(path, Bytes());
        return path;
    }

    private static ValueInfoProto ValueInfo(string name, int type, long[] shape)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = type, Shape = new TensorShapeProto() };
        foreach (long d in shape)
            tensorType.Shape.Dim.Add(d > 0 ? new TensorShapeProto.Types.Dimension { DimValue = d } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensorType } };
    }
}
