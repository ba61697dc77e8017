using Google.Protobuf;
using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;
using OnnxSlim.Runtime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.Recovery.Tests;

/// <summary>Builds small float32 ONNX graphs in memory (opset 13) for exact-recovery tests.</summary>
public sealed class TinyModel
{
    private readonly GraphProto _graph = new() { Name = "tiny" };
    private readonly Random _rng;

    public TinyModel(int seed = 1) => _rng = new Random(seed);

    public TinyModel Input(string name, params long[] dims)
    {
        _graph.Input.Add(ValueInfo(name, dims));
        return this;
    }

    public TinyModel Output(string name)
    {
        _graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = DataType.Float } } });
        return this;
    }

    public float[] Normal(int n, double scale = 1)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = (float)(scale * Math.Sqrt(-2 * Math.Log(1 - _rng.NextDouble())) * Math.Cos(2 * Math.PI * _rng.NextDouble()));
        return v;
    }

    public TinyModel Initializer(string name, long[] dims, float[] values)
    {
        _graph.Initializer.Add(Tensor.FromFloats(name, dims, values).Proto);
        return this;
    }

    public TinyModel Node(string op, string name, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        foreach (var (key, value) in attributes)
        {
            var a = new AttributeProto { Name = key };
            switch (value)
            {
                case long[] ints: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.Add(ints); break;
                case long i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
                case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
                case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
                case string s: a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(s); break;
                default: throw new ArgumentException($"attribute {key} has unsupported value {value}");
            }
            node.Attribute.Add(a);
        }
        _graph.Node.Add(node);
        return this;
    }

    public OnnxModel Build()
    {
        var model = new ModelProto { IrVersion = 8, Graph = _graph.Clone(), ProducerName = "recovery-tests" };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return OnnxModel.FromProto(model);
    }

    private static ValueInfoProto ValueInfo(string name, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (long d in dims)
            shape.Dim.Add(d > 0 ? new TensorShapeProto.Types.Dimension { DimValue = d } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = DataType.Float, Shape = shape } } };
    }

    public static NamedTensor Tensor4(string name, long[] shape, float[] data) => new(name, TensorElementType.Float, shape, data);

    /// <summary>Keeps the given indices of one axis of a stored tensor (what a channel-pruning rewriter does).</summary>
    public static void SliceAxis(OnnxModel model, string tensorName, int axis, int[] keep)
    {
        var t = model.Graph.Initializer(tensorName) ?? throw new ArgumentException($"no initializer {tensorName}");
        long[] dims = t.Dims;
        float[] v = t.ToFloats();
        long outer = dims[..axis].Aggregate(1L, (a, b) => a * b), inner = dims[(axis + 1)..].Aggregate(1L, (a, b) => a * b);
        var result = new float[outer * keep.Length * inner];
        for (long o = 0; o < outer; o++)
            for (int k = 0; k < keep.Length; k++)
                Array.Copy(v, (o * dims[axis] + keep[k]) * inner, result, (o * keep.Length + k) * inner, inner);
        dims[axis] = keep.Length;
        t.SetFloats(dims, result);
    }

    public static float[] Run(OnnxModel model, params NamedTensor[] inputs)
    {
        using var runner = new ModelRunner(model.ToBytes());
        return runner.Run(inputs)[0].AsFloats();
    }

    /// <summary>max |a − b| / max |a|.</summary>
    public static double RelativeMaxError(float[] reference, float[] candidate)
    {
        Assert.Equal(reference.Length, candidate.Length);
        double scale = reference.Max(Math.Abs), worst = 0;
        for (int i = 0; i < reference.Length; i++) worst = Math.Max(worst, Math.Abs(reference[i] - candidate[i]));
        return worst / scale;
    }
}
