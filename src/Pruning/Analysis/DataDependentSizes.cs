namespace OnnxSlim.Pruning;

/// <summary>
/// The pruned model's value shapes with the leading size the original had on the same input. Why: on seeded random
/// input a pruned detector lets another number of boxes through NMS (Keypoint R-CNN: 100 where the original let none
/// through), and the cost of its heads at that count says nothing about the pruning. Pruning changes channel axes;
/// a leading axis is a batch or an instance count.
/// </summary>
internal static class DataDependentSizes
{
    /// <param name="changed">The values whose leading size differed, with both sizes, largest difference first.</param>
    public static Dictionary<string, long[]> AtOriginal(IReadOnlyDictionary<string, long[]> pruned, IReadOnlyDictionary<string, long[]> original,
        out List<(string Value, long Pruned, long Original)> changed)
    {
        var result = new Dictionary<string, long[]>(pruned, StringComparer.Ordinal);
        changed = [];
        foreach (var (value, shape) in pruned)
        {
            if (shape.Length == 0 || !original.TryGetValue(value, out var before) || before.Length != shape.Length || before[0] == shape[0]) continue;
            result[value] = [before[0], .. shape[1..]];
            changed.Add((value, shape[0], before[0]));
        }
        changed.Sort((a, b) => Math.Abs(b.Pruned - b.Original).CompareTo(Math.Abs(a.Pruned - a.Original)));
        return result;
    }
}
