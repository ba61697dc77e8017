using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// Finds, for each removed channel, a kept channel it is a proven multiple of, and the consumer-weight
/// additions that make its removal exact. Candidates come from the first producer's filter directions
/// (normalised rows projected on a fixed random vector, so a positive multiple lands on the same value);
/// each candidate is then proven by a <see cref="MergeWalk"/> over the whole group.
/// </summary>
internal static class MergePlanner
{
    private const double SignatureWindow = 1e-4;
    private const int MaxCandidates = 8;

    /// <returns>The consumer-weight additions and the removed channels they merge.</returns>
    public static (List<MergeAddition> Additions, HashSet<int> Merged) Plan(ChannelGroupSet groups, ChannelGroup group, int[] keep, Func<WeightRef, float[]> floats)
    {
        var additions = new List<MergeAddition>();
        var mergedChannels = new HashSet<int>();
        if (keep.Length == group.Width) return (additions, mergedChannels);
        var producer = group.Sites.OfType<TensorSite>().FirstOrDefault(s => s.Role == SiteRole.ProducerWeight);
        if (producer is null) return (additions, mergedChannels);
        double[] signature = Signatures(producer, group, floats);
        var kept = keep.Where(c => !double.IsNaN(signature[c])).OrderBy(c => signature[c]).ToArray();
        var keptSignatures = kept.Select(c => signature[c]).ToArray();
        var keepSet = keep.ToHashSet();
        var walk = new MergeWalk(groups, group, floats);
        var seen = new Dictionary<(int, int, long, long), double>();
        var tensorIds = new Dictionary<Tensor, int>();
        (int, int, long, long) Key(MergeAddition a) => (tensorIds.TryGetValue(a.Weight.Tensor, out int id) ? id : tensorIds[a.Weight.Tensor] = tensorIds.Count, a.Axis, a.From, a.To);
        for (int j = 0; j < group.Width; j++)
        {
            if (keepSet.Contains(j) || double.IsNaN(signature[j])) continue;
            int at = Array.BinarySearch(keptSignatures, signature[j] - SignatureWindow);
            if (at < 0) at = ~at;
            for (int tries = 0; at < kept.Length && keptSignatures[at] <= signature[j] + SignatureWindow && tries < MaxCandidates; at++, tries++)
            {
                var found = walk.TryMerge(j, kept[at]);
                if (found is null || !Consistent(found, seen, Key)) continue;
                foreach (var a in found)
                {
                    var key = Key(a);
                    // A weight shared by several readers gets the addition once.
                    if (seen.TryAdd(key, a.Ratio)) additions.Add(a);
                }
                mergedChannels.Add(j);
                break;
            }
        }
        return (additions, mergedChannels);
    }

    private static bool Consistent(List<MergeAddition> found, Dictionary<(int, int, long, long), double> seen, Func<MergeAddition, (int, int, long, long)> keyOf)
    {
        var local = new Dictionary<(int, int, long, long), double>();
        foreach (var a in found)
        {
            var key = keyOf(a);
            if (seen.TryGetValue(key, out double r) && !Proportion.Near(r, a.Ratio)) return false;
            if (local.TryGetValue(key, out double l) && !Proportion.Near(l, a.Ratio)) return false;
            local[key] = a.Ratio;
        }
        return true;
    }

    /// <summary>Per channel, the unit filter row (bias appended) projected on a fixed random direction; NaN for zero rows.</summary>
    private static double[] Signatures(TensorSite producer, ChannelGroup group, Func<WeightRef, float[]> floats)
    {
        var data = floats(producer.Weight);
        long[] dims = producer.Weight.Tensor.Dims;
        var result = new double[group.Width];
        var rng = new Random(12345);
        double[]? direction = null;
        // The row is read in place (element e of the slice at `position` along the axis), not taken as a copy: VGG-16's
        // first classifier group would allocate 4096 rows of 100 KB, all garbage at the rewrite's peak.
        long size = dims[producer.Axis], inner = TensorSlicer.Product(dims, producer.Axis + 1, dims.Length);
        long rowLength = data.Length / size;
        for (int c = 0; c < group.Width; c++)
        {
            int position = producer.Layout.PositionOf(group.Id, c);
            if (position < 0) { result[c] = double.NaN; continue; }
            direction ??= [.. Enumerable.Range(0, (int)rowLength).Select(_ => rng.NextDouble() - 0.5)];
            double dot = 0, norm = 0;
            for (long e = 0; e < rowLength; e++)
            {
                long o = e / inner;
                float v = data[(int)((o * size + position) * inner + e - o * inner)];
                dot += v * direction[e];
                norm += (double)v * v;
            }
            result[c] = norm == 0 ? double.NaN : dot / Math.Sqrt(norm);
        }
        return result;
    }
}
