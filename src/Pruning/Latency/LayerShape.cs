using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// A Conv, ConvTranspose, Gemm or MatMul with a constant weight, at the model's real shapes: how many output and
/// input elements its channel axes hold, and the single-layer model that times it at other counts. Depthwise convs
/// (one input channel per output) have one count for both; other grouped convs are not rebuilt alone.
/// </summary>
/// <param name="InputAxis">The input's axis that holds its channels (<paramref name="OutputAxis"/>: the output's).</param>
/// <param name="Outputs">Output elements along the output's channel axis (<paramref name="Inputs"/>: input elements along the input's).</param>
/// <param name="Timeable">Whether a single-layer model can be built at other widths (not for grouped, non-depthwise convs).</param>
internal sealed record LayerShape(Node Node, long[] InputShape, long[] WeightShape, bool HasBias, int InputAxis, int OutputAxis,
    long Outputs, long Inputs, bool Depthwise, bool Timeable)
{

    /// <summary>Weight bytes at full width (too large a layer is not rebuilt alone).</summary>
    public long WeightBytes => WeightShape.Aggregate(4L, (a, b) => a * b);

    /// <summary>What makes two layers time alike: operator, attributes and shapes.</summary>
    public string Signature => $"{Node.OpType}|{Node.AttributesText}|{string.Join("x", InputShape)}|{string.Join("x", WeightShape)}|{HasBias}";

    public static LayerShape? Of(Graph graph, Node node, IReadOnlyDictionary<string, long[]> shapes)
    {
        if (node.OpType is not ("Conv" or "ConvTranspose" or "Gemm" or "MatMul")) return null;
        if (!shapes.TryGetValue(node.Input(0), out var input) || input.Any(d => d <= 0)) return null;
        if (graph.ResolveWeight(node.Input(1))?.Tensor is not { IsFloating: true } w) return null;
        long[] weight = w.Dims;
        bool bias = node.Input(2).Length > 0;
        switch (node.OpType)
        {
            case "Conv":
            {
                if (input.Length < 3 || weight.Length != input.Length) return null;
                long groups = node.GetInt("group", 1);
                bool depthwise = groups > 1 && groups == input[1] && weight[0] == groups && weight[1] == 1;
                return new LayerShape(node, input, weight, bias, 1, 1, weight[0], input[1], depthwise, groups == 1 || depthwise);
            }
            case "ConvTranspose":
            {
                if (input.Length < 3 || weight.Length != input.Length) return null;
                long groups = node.GetInt("group", 1);
                return new LayerShape(node, input, weight, bias, 1, 1, weight[1] * groups, weight[0], false, groups == 1);
            }
            case "Gemm":
            {
                if (input.Length != 2 || weight.Length != 2) return null;
                bool transB = node.GetInt("transB", 0) != 0;
                int inAxis = node.GetInt("transA", 0) != 0 ? 0 : 1;
                return new LayerShape(node, input, weight, bias, inAxis, 1, weight[transB ? 0 : 1], weight[transB ? 1 : 0], false, true);
            }
            default:
            {
                if (weight.Length != 2 || input.Length < 2) return null;
                return new LayerShape(node, input, weight, false, input.Length - 1, input.Length - 1, weight[1], weight[0], false, true);
            }
        }
    }

    /// <summary>The layer alone with <paramref name="outputs"/> output and <paramref name="inputs"/> input elements (a depthwise conv: the same count).</summary>
    public byte[] Build(long outputs, long inputs, long opset, long irVersion)
    {
        var input = (long[])InputShape.Clone();
        var weight = (long[])WeightShape.Clone();
        long? convGroups = null;
        input[InputAxis] = inputs;
        switch (Node.OpType)
        {
            case "Conv" when Depthwise:
                input[InputAxis] = outputs;
                weight[0] = outputs;
                convGroups = outputs;
                break;
            case "Conv":
                weight[0] = outputs;
                weight[1] = inputs;
                break;
            case "ConvTranspose":
                weight[0] = inputs;
                weight[1] = outputs;
                break;
            case "Gemm" when Node.GetInt("transB", 0) != 0:
                weight[0] = outputs;
                weight[1] = inputs;
                break;
            default:
                weight[0] = inputs;
                weight[1] = outputs;
                break;
        }
        return SingleLayerModel.Build(Node, input, weight, HasBias ? outputs : 0, convGroups, opset, irVersion);
    }

    /// <summary>The input <see cref="Build"/>'s model reads at these counts.</summary>
    public NamedTensor InputAt(long outputs, long inputs)
    {
        var input = (long[])InputShape.Clone();
        input[InputAxis] = Depthwise ? outputs : inputs;
        return SingleLayerModel.InputOf(input);
    }
}
