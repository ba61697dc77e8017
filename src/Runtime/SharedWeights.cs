using System.Buffers;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Runtime;

/// <summary>
/// A model split for a one-off ONNX Runtime session: its large float32 weights become graph inputs fed from the
/// model's own memory (pinned, not copied), and the rest serialises to a few MB. Why: a session built from the
/// serialised model holds its own copy of every weight and, while it is built, about two (a 553 MB VGG-16 took
/// +950 MB at the peak); one that reads the weights as inputs adds only its activations. For probes and
/// validation runs (basic graph optimisation, where constant weights buy nothing); timing uses the real model.
/// </summary>
internal sealed class SharedWeights : IDisposable
{
    /// <summary>Weights below this stay constants (shape-like constants, small tables the optimiser may want).</summary>
    private const int MinBytes = 64 * 1024;

    private readonly List<MemoryHandle> _pins = [];

    private SharedWeights(byte[] graph, List<string> names, List<OrtValue> values, List<MemoryHandle> pins)
    {
        Graph = graph;
        Names = names;
        Values = values;
        _pins = pins;
    }

    /// <summary>The model without the shared weights, serialised.</summary>
    public byte[] Graph { get; }

    /// <summary>The inputs that carry the shared weights, and their values.</summary>
    public IReadOnlyList<string> Names { get; }
    public IReadOnlyList<OrtValue> Values { get; }

    /// <summary>
    /// Splits <paramref name="proto"/>, a copy of the model's proto this call may edit (a message copy shares the weight
    /// bytes, which must not change while the session runs — protobuf byte strings never do).
    /// </summary>
    public static SharedWeights Split(ModelProto proto)
    {
        var graph = proto.Graph;
        var declared = new HashSet<string>(graph.Input.Select(i => i.Name), StringComparer.Ordinal);
        var names = new List<string>();
        var values = new List<OrtValue>();
        var pins = new List<MemoryHandle>();
        try
        {
            for (int i = graph.Initializer.Count - 1; i >= 0; i--)
            {
                var t = graph.Initializer[i];
                long elements = t.Dims.Aggregate(1L, (a, b) => a * b);
                if (t.DataType != GraphIO.DataType.Float || t.DataLocation == TensorProto.Types.DataLocation.External
                    || t.RawData.Length < MinBytes || t.RawData.Length != elements * sizeof(float) || t.Dims.Any(d => d <= 0)) continue;
                var pin = t.RawData.Memory.Pin();
                pins.Add(pin);
                unsafe
                {
                    values.Add(OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, [.. t.Dims], (IntPtr)pin.Pointer, t.RawData.Length));
                }
                names.Add(t.Name);
                graph.Initializer.RemoveAt(i);
                if (declared.Add(t.Name)) graph.Input.Add(FloatInput(t.Name, t.Dims));
            }
            return new SharedWeights(proto.ToByteArray(), names, values, pins);
        }
        catch
        {
            foreach (var v in values) v.Dispose();
            foreach (var p in pins) p.Dispose();
            throw;
        }
    }

    private static ValueInfoProto FloatInput(string name, IEnumerable<long> dims)
    {
        var type = new TypeProto.Types.Tensor { ElemType = GraphIO.DataType.Float, Shape = new TensorShapeProto() };
        foreach (long d in dims) type.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = type } };
    }

    public void Dispose()
    {
        foreach (var v in Values) v.Dispose();
        foreach (var p in _pins) p.Dispose();
    }
}
