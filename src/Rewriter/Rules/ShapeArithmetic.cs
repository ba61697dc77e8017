using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter.Rules;

/// <summary>
/// The small integer computations exporters derive from a tensor's shape, such as torch.chunk's split points
/// (Shape → Gather → Add → Div → Mul → Slice bounds). Evaluated here from the channel count the layouts know
/// (and probed dims), so that the bounds they feed can be written as constants of the kept counts instead of
/// being recomputed from the pruned width (ceil(K/2) is not what a pruned half keeps).
/// </summary>
internal static class ShapeArithmetic
{
    private const int MaxDepth = 24;

    /// <summary>The operators such a computation may pass through between the Shape and its use.</summary>
    public static bool IsArithmetic(Node node) =>
        node.IsStandard && node.OpType is "Gather" or "Add" or "Sub" or "Mul" or "Div" or "Cast" or "Unsqueeze" or "Squeeze" or "Concat" or "Identity";

    /// <summary>The value as integers (1-D), or null when it is not a constant or a computation of known dims.</summary>
    public static long[]? Evaluate(ChannelFlow flow, string value) => Evaluate(flow, value, 0);

    private static long[]? Evaluate(ChannelFlow flow, string value, int depth)
    {
        if (value.Length == 0 || depth > MaxDepth) return null;
        if (flow.ConstantInts(value) is { } constant) return constant;
        if (flow.Graph.Producer(value) is not { IsStandard: true } node) return null;
        long[]? In(int k) => Evaluate(flow, node.Input(k), depth + 1);
        switch (node.OpType)
        {
            case "Shape":
                return Dims(flow, node);
            case "Gather" when node.GetInt("axis", 0) == 0:
            {
                if (In(0) is not { } data || flow.ConstantInts(node.Input(1)) is not { } indices) return null;
                var picked = new long[indices.Length];
                for (int i = 0; i < indices.Length; i++)
                {
                    long at = indices[i] < 0 ? indices[i] + data.Length : indices[i];
                    if (at < 0 || at >= data.Length || data[at] < 0) return null;
                    picked[i] = data[at];
                }
                return picked;
            }
            case "Add" or "Sub" or "Mul" or "Div":
            {
                if (In(0) is not { } a || In(1) is not { } b) return null;
                int n = Math.Max(a.Length, b.Length);
                if ((a.Length != n && a.Length != 1) || (b.Length != n && b.Length != 1)) return null;
                var result = new long[n];
                for (int i = 0; i < n; i++)
                {
                    long x = a[a.Length == 1 ? 0 : i], y = b[b.Length == 1 ? 0 : i];
                    if (node.OpType == "Div" && y == 0) return null;
                    // ONNX integer Div truncates (C semantics), as ONNX Runtime computes it.
                    result[i] = node.OpType switch { "Add" => x + y, "Sub" => x - y, "Mul" => x * y, _ => x / y };
                }
                return result;
            }
            case "Cast" when (int)node.GetInt("to", 0) is DataType.Int64 or DataType.Int32:
            case "Unsqueeze" or "Squeeze" or "Identity":
                return In(0);
            case "Concat" when node.GetInt("axis", 0) is 0 or -1:
            {
                var parts = new List<long>();
                for (int k = 0; k < node.Inputs.Count; k++)
                {
                    if (In(k) is not { } part) return null;
                    parts.AddRange(part);
                }
                return [.. parts];
            }
            default:
                return null;
        }
    }

    /// <summary>A Shape node's output: the channel count from the input's layout, other dims from the probed shapes (-1 where unknown).</summary>
    private static long[]? Dims(ChannelFlow flow, Node shape)
    {
        string input = shape.Input(0);
        var layout = flow.Layout(input);
        long[]? dims = flow.Shape(input) is { } s ? [.. s] : layout is null ? null : Enumerable.Repeat(-1L, layout.Rank).ToArray();
        if (dims is null) return null;
        if (layout is not null)
        {
            if (!layout.IsPlain || layout.Rank != dims.Length) return null;
            dims[layout.Axis] = layout.Channels;
        }
        long rank = dims.Length, start = shape.GetInt("start", 0), end = shape.GetInt("end", rank);
        if (start < 0) start += rank;
        if (end < 0) end += rank;
        start = Math.Clamp(start, 0, rank);
        end = Math.Clamp(end, start, rank);
        return dims[(int)start..(int)end];
    }
}
