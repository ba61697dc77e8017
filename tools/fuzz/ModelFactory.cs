using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Fuzz;

/// <summary>Where a generated net keeps its conv/Gemm weights.</summary>
public enum WeightStorage { Initializer, ConstantNode, Fp16Cast, Identity, External }

/// <summary>A small conv net to generate: conv (+BatchNorm) + Relu layers, optional residual Add and depthwise conv, a classifier head.</summary>
public sealed record NetSpec
{
    public int Opset { get; init; } = 13;
    public int InChannels { get; init; } = 1;
    public int Size { get; init; } = 12;
    public bool DynamicBatch { get; init; }
    public int[] Widths { get; init; } = [8, 8];
    public bool BatchNorm { get; init; } = true;
    public bool Residual { get; init; }
    public bool Depthwise { get; init; }
    public int Head { get; init; } // 0: GAP-Flatten-Gemm, 1: Flatten-Gemm, 2: 1x1 conv + GAP
    public int Classes { get; init; } = 5;
    public WeightStorage Storage { get; init; } = WeightStorage.Initializer;
    public string InputName { get; init; } = "input";
    public string OutputName { get; init; } = "logits";

    public long IrVersion => Opset switch { <= 9 => 4, 10 => 5, 11 => 6, <= 13 => 7, _ => 8 };

    public static NetSpec Random(Rng rng)
    {
        int layers = rng.Range(1, 4);
        var widths = new int[layers];
        for (int i = 0; i < layers; i++) widths[i] = rng.Pick(4, 6, 8, 12, 16);
        bool residual = rng.Chance(0.3);
        if (residual && layers >= 2) widths[1] = widths[0];
        return new NetSpec
        {
            Opset = rng.Range(9, 18),
            InChannels = rng.Pick(1, 3),
            Size = rng.Pick(8, 12, 16),
            DynamicBatch = rng.Chance(0.5),
            Widths = widths,
            BatchNorm = rng.Chance(0.6),
            Residual = residual,
            Depthwise = rng.Chance(0.2),
            Head = rng.Next(3),
            Classes = rng.Pick(3, 5, 10),
            Storage = rng.Weighted((6, WeightStorage.Initializer), (1, WeightStorage.ConstantNode), (1, WeightStorage.Fp16Cast),
                (0.5, WeightStorage.Identity), (1, WeightStorage.External)),
            InputName = rng.Chance(0.8) ? "input" : "x",
        };
    }

    public string Describe() =>
        $"net[{string.Join('-', Widths)}{(BatchNorm ? ",bn" : "")}{(Residual ? ",res" : "")}{(Depthwise ? ",dw" : "")},head{Head},opset{Opset},{Storage}]";
}

/// <summary>A generated model: the proto, its side files (external data), and facts the mutators need.</summary>
internal sealed class BuiltModel
{
    public required ModelProto Proto { get; init; }
    public Dictionary<string, byte[]> SideFiles { get; } = new(StringComparer.Ordinal);
    /// <summary>Conv layers in order: node name, weight name, output channels.</summary>
    public List<(string Node, string Weight, int Channels)> Convs { get; } = [];
    public required string InputName { get; init; }
    public required long[] InputShape { get; init; }
    public string? Describe { get; init; }

    public byte[] Bytes => Proto.ToByteArray();
}

/// <summary>Builds small valid conv nets with the generated ONNX types (so the fuzzer runs from a fresh clone).</summary>
internal static class ModelFactory
{
    public const string ExternalFile = "weights.bin";

    public static BuiltModel Build(NetSpec spec, Rng rng)
    {
        var model = new ModelProto { IrVersion = spec.IrVersion, ProducerName = "onnxslim-fuzz", Graph = new GraphProto { Name = "fuzz" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = spec.Opset });
        var g = model.Graph;
        long batch = 1;
        long[] inputShape = [batch, spec.InChannels, spec.Size, spec.Size];
        object[] inDims = [spec.DynamicBatch ? "N" : 1L, (long)spec.InChannels, (long)spec.Size, (long)spec.Size];
        g.Input.Add(ValueInfo(spec.InputName, 1, inDims));
        var built = new BuiltModel { Proto = model, InputName = spec.InputName, InputShape = inputShape, Describe = spec.Describe() };
        var weights = new List<TensorProto>();

        string x = spec.InputName;
        int cin = spec.InChannels;
        for (int i = 0; i < spec.Widths.Length; i++)
        {
            int w = spec.Widths[i];
            string wName = $"conv{i}.weight", bName = $"conv{i}.bias";
            weights.Add(Floats(wName, [w, cin, 3, 3], rng, 1.0 / Math.Sqrt(cin * 9)));
            bool bias = !spec.BatchNorm || rng.Chance(0.3);
            if (bias) weights.Add(Floats(bName, [w], rng, 0.1));
            string y = $"conv{i}.out";
            var conv = Node("Conv", $"conv{i}", bias ? [x, wName, bName] : [x, wName], [y]);
            conv.Attribute.Add(Ints("kernel_shape", 3, 3));
            conv.Attribute.Add(Ints("pads", 1, 1, 1, 1));
            g.Node.Add(conv);
            built.Convs.Add((conv.Name, wName, w));
            if (spec.BatchNorm)
            {
                string[] names = [$"bn{i}.scale", $"bn{i}.bias", $"bn{i}.mean", $"bn{i}.var"];
                g.Initializer.Add(Floats(names[0], [w], rng, 0.2, 1.0));
                g.Initializer.Add(Floats(names[1], [w], rng, 0.1));
                g.Initializer.Add(Floats(names[2], [w], rng, 0.1));
                g.Initializer.Add(Positive(names[3], w, rng));
                var bn = Node("BatchNormalization", $"bn{i}", [y, .. names], [$"bn{i}.out"]);
                bn.Attribute.Add(new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = 1e-5f });
                g.Node.Add(bn);
                y = $"bn{i}.out";
            }
            g.Node.Add(Node("Relu", $"relu{i}", [y], [$"relu{i}.out"]));
            y = $"relu{i}.out";
            if (spec.Residual && i > 0 && w == cin)
            {
                g.Node.Add(Node("Add", $"add{i}", [x, y], [$"add{i}.out"]));
                y = $"add{i}.out";
            }
            if (spec.Depthwise && i == 0)
            {
                string dwName = $"dw{i}.weight";
                weights.Add(Floats(dwName, [w, 1, 3, 3], rng, 0.3));
                var dw = Node("Conv", $"dw{i}", [y, dwName], [$"dw{i}.out"]);
                dw.Attribute.Add(Ints("kernel_shape", 3, 3));
                dw.Attribute.Add(Ints("pads", 1, 1, 1, 1));
                dw.Attribute.Add(new AttributeProto { Name = "group", Type = AttributeProto.Types.AttributeType.Int, I = w });
                g.Node.Add(dw);
                y = $"dw{i}.out";
            }
            x = y;
            cin = w;
        }

        long[] outShape;
        switch (spec.Head)
        {
            case 1:
                g.Node.Add(Flatten(x, "flatten"));
                weights.Add(Floats("fc.weight", [spec.Classes, cin * spec.Size * spec.Size], rng, 1.0 / Math.Sqrt(cin * spec.Size * spec.Size)));
                g.Initializer.Add(Floats("fc.bias", [spec.Classes], rng, 0.1));
                g.Node.Add(Gemm("flatten.out", "fc.weight", "fc.bias", spec.OutputName));
                outShape = [1, spec.Classes];
                break;
            case 2:
                weights.Add(Floats("head.weight", [spec.Classes, cin, 1, 1], rng, 1.0 / Math.Sqrt(cin)));
                g.Initializer.Add(Floats("head.bias", [spec.Classes], rng, 0.1));
                g.Node.Add(Node("Conv", "head", [x, "head.weight", "head.bias"], ["head.out"]));
                g.Node.Add(Node("GlobalAveragePool", "gap", ["head.out"], [spec.OutputName]));
                outShape = [1, spec.Classes, 1, 1];
                break;
            default:
                g.Node.Add(Node("GlobalAveragePool", "gap", [x], ["gap.out"]));
                g.Node.Add(Flatten("gap.out", "flatten"));
                weights.Add(Floats("fc.weight", [spec.Classes, cin], rng, 1.0 / Math.Sqrt(cin)));
                g.Initializer.Add(Floats("fc.bias", [spec.Classes], rng, 0.1));
                g.Node.Add(Gemm("flatten.out", "fc.weight", "fc.bias", spec.OutputName));
                outShape = [1, spec.Classes];
                break;
        }
        object[] outDims = [.. outShape.Cast<object>()];
        if (spec.DynamicBatch) outDims[0] = "N";
        g.Output.Add(ValueInfo(spec.OutputName, 1, outDims));
        Store(built, weights, spec.Storage);
        return built;
    }

    /// <summary>Puts weights where the spec says: initializers, Constant nodes, fp16 behind Cast, behind Identity, or an external file.</summary>
    private static void Store(BuiltModel built, List<TensorProto> weights, WeightStorage storage)
    {
        var g = built.Proto.Graph;
        var front = new List<NodeProto>();
        using var external = new MemoryStream();
        foreach (var t in weights)
        {
            switch (storage)
            {
                case WeightStorage.ConstantNode:
                    var c = Node("Constant", $"const:{t.Name}", [], [t.Name]);
                    c.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = t });
                    front.Add(c);
                    break;
                case WeightStorage.Fp16Cast:
                    var half = ToHalf(t, t.Name + ".fp16");
                    g.Initializer.Add(half);
                    var cast = Node("Cast", $"cast:{t.Name}", [half.Name], [t.Name]);
                    cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
                    front.Add(cast);
                    break;
                case WeightStorage.Identity:
                    string raw = t.Name + ".raw";
                    var copy = t.Clone();
                    copy.Name = raw;
                    g.Initializer.Add(copy);
                    front.Add(Node("Identity", $"id:{t.Name}", [raw], [t.Name]));
                    break;
                case WeightStorage.External:
                    while (external.Length % 16 != 0) external.WriteByte(0);
                    long offset = external.Length;
                    byte[] bytes = RawFloats(t);
                    external.Write(bytes);
                    var ext = new TensorProto { Name = t.Name, DataType = t.DataType, DataLocation = TensorProto.Types.DataLocation.External };
                    ext.Dims.Add(t.Dims);
                    ext.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = ExternalFile });
                    ext.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString() });
                    ext.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString() });
                    g.Initializer.Add(ext);
                    break;
                default:
                    g.Initializer.Add(t);
                    break;
            }
        }
        for (int i = front.Count - 1; i >= 0; i--) g.Node.Insert(0, front[i]);
        if (external.Length > 0) built.SideFiles[ExternalFile] = external.ToArray();
    }

    public static NodeProto Node(string op, string name, string[] inputs, string[] outputs)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.Add(inputs);
        n.Output.Add(outputs);
        return n;
    }

    private static NodeProto Flatten(string x, string name)
    {
        var n = Node("Flatten", name, [x], [$"{name}.out"]);
        n.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        return n;
    }

    private static NodeProto Gemm(string x, string w, string b, string y)
    {
        var n = Node("Gemm", "fc", [x, w, b], [y]);
        n.Attribute.Add(new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        return n;
    }

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    /// <summary>A tensor value info; dims are longs (dim_value) or strings (dim_param).</summary>
    public static ValueInfoProto ValueInfo(string name, int elemType, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elemType, Shape = shape } },
        };
    }

    public static ValueInfoProto ValueInfo(string name, int elemType, long[] dims) => ValueInfo(name, elemType, dims.Cast<object>().ToArray());

    public static TensorProto Floats(string name, long[] dims, Rng rng, double scale, double mean = 0)
    {
        long n = dims.Aggregate(1L, (a, b) => a * b);
        var t = new TensorProto { Name = name, DataType = 1 };
        t.Dims.Add(dims);
        var values = new float[n];
        for (long i = 0; i < n; i++) values[i] = (float)(mean + rng.Normal(scale));
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    private static TensorProto Positive(string name, int n, Rng rng)
    {
        var t = new TensorProto { Name = name, DataType = 1 };
        t.Dims.Add(n);
        var values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (float)(0.5 + rng.NextDouble());
        WriteFloats(t, values);
        return t;
    }

    /// <summary>A float32 tensor's values, whichever field holds them.</summary>
    public static float[] ReadFloats(TensorProto t) =>
        t.FloatData.Count > 0 ? [.. t.FloatData] : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();

    public static byte[] RawFloats(TensorProto t) =>
        t.RawData.Length > 0 ? t.RawData.ToByteArray() : System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.FloatData.ToArray().AsSpan()).ToArray();

    public static void WriteFloats(TensorProto t, float[] values)
    {
        t.FloatData.Clear();
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static TensorProto ToHalf(TensorProto t, string name)
    {
        var values = ReadFloats(t);
        var halves = new Half[values.Length];
        for (int i = 0; i < values.Length; i++) halves[i] = (Half)values[i];
        var h = new TensorProto { Name = name, DataType = 10 };
        h.Dims.Add(t.Dims);
        h.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(halves.AsSpan()));
        return h;
    }
}
