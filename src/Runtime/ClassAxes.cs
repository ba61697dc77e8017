using OnnxSlim.GraphIO;

namespace OnnxSlim.Runtime;

/// <summary>
/// The model outputs that hold class scores on their last axis because a Softmax or LogSoftmax normalises over it: a text
/// recognizer's [N, T, classes], a per-pixel classifier's [N, H·W, classes]. Their top-1 agreement is read position by
/// position (<see cref="OutputComparison"/>); a rank-2 [N, K] output counts as a classifier's without this.
/// </summary>
public static class ClassAxes
{
    /// <returns>Per such output candidate, the axis its Softmax or LogSoftmax declares (the opset's default where none is
    /// set; negative counts from the end). Whether it is the last one is known from the output's shape only.</returns>
    public static IReadOnlyDictionary<string, long> Find(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        // Before opset 13 the default axis is 1 and flattens the axes from it on; from 13, -1. Either way the last axis of a
        // rank-r output is r - 1 or -1.
        long fallback = model.Opset >= 13 ? -1 : 1;
        var axes = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var output in model.Graph.Outputs)
            if (model.Graph.Producer(output.Name) is { IsStandard: true, OpType: "Softmax" or "LogSoftmax" } node)
                axes[output.Name] = node.GetInt("axis", fallback);
        return axes;
    }

    /// <summary>Whether <paramref name="axis"/> is the last axis of a rank-<paramref name="rank"/> value.</summary>
    internal static bool IsLast(long axis, int rank) => axis == -1 || axis == rank - 1;
}
