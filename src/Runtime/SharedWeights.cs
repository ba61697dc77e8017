using System.Buffers;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;

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
    private readonly Dictionary<string, int> _positions;

    private SharedWeights(byte[] graph, List<string> names, List<OrtValue> values, List<MemoryHandle> pins)
    {
        Graph = graph;
        Names = names;
        Values = values;
        _pins = pins;
        _positions = new Dictionary<string, int>(names.Count, StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++) _positions[names[i]] = i;
    }

    /// <summary>The model without the shared weights, serialised.</summary>
    public byte[] Graph { get; }

    /// <summary>The inputs that carry the shared weights, and their values.</summary>
    public IReadOnlyList<string> Names { get; }
    public IReadOnlyList<OrtValue> Values { get; }

    /// <summary>The position of <paramref name="name"/> in <see cref="Names"/>, or -1 when it is not shared.</summary>
    public int IndexOf(string name) => _positions.TryGetValue(name, out int at) ? at : -1;

    /// <summary>Splits <paramref name="model"/> (with <paramref name="extraOutputs"/> as outputs, see <see cref="OnnxModel.SplitWeights"/>), pinning the shared weights' bytes.</summary>
    /// <param name="always">Float32 weights shared whatever their size (a caller replaces them run by run).</param>
    public static SharedWeights Split(OnnxModel model, IEnumerable<string> extraOutputs, IReadOnlySet<string>? always = null)
    {
        var (graph, weights) = model.SplitWeights(extraOutputs, MinBytes, always);
        var names = new List<string>();
        var values = new List<OrtValue>();
        var pins = new List<MemoryHandle>();
        try
        {
            foreach (var (name, dims, bytes) in weights)
            {
                var pin = bytes.Pin();
                pins.Add(pin);
                unsafe
                {
                    values.Add(OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, dims, (IntPtr)pin.Pointer, bytes.Length));
                }
                names.Add(name);
            }
            return new SharedWeights(graph, names, values, pins);
        }
        catch
        {
            foreach (var v in values) v.Dispose();
            foreach (var p in pins) p.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var v in Values) v.Dispose();
        foreach (var p in _pins) p.Dispose();
    }
}
