using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;
using OnnxSlim.Rewriter;

namespace OnnxSlim.TestSupport;

/// <summary>
/// Edits weights so that chosen channels are provably removable, for exactness checks of the rewriter:
/// zeroed channels (removal alone is exact where a ReLU-like op follows) or channels that are positive
/// multiples of kept ones (merging is exact). Works through the same sites the rewriter slices.
/// </summary>
public static class RedundancyInjector
{
    /// <summary>
    /// Zeroes the given channels of a group: producer filters and biases, depthwise biases and per-channel
    /// offsets (BatchNorm bias and mean, added constants), so the channels are 0 wherever zero maps to zero.
    /// </summary>
    public static void ZeroChannels(ChannelGroupSet groups, int groupId, IEnumerable<int> channels)
    {
        var group = groups[groupId];
        var cache = new Dictionary<TensorProto, (Tensor Tensor, float[] Values)>(ReferenceEqualityComparer.Instance);
        foreach (int c in channels)
            foreach (var site in group.Sites.OfType<TensorSite>())
            {
                if (site.Role is SiteRole.ConsumerWeight or SiteRole.ChannelGain or SiteRole.DepthwiseWeight) continue;
                int position = site.Layout.PositionOf(groupId, c);
                if (position < 0) continue;
                var values = Load(cache, site.Weight);
                var (element, inner) = site.Layout.ElementsOf(position);
                Fill(values, site.Weight.Tensor.Dims, site.Axis, element, inner, (_, _) => 0f);
            }
        Store(cache);
    }

    /// <summary>
    /// For every prunable group in <paramref name="keepByGroupId"/>, makes each removed channel j a copy of a
    /// random kept channel i scaled by a random a in [0.5, 2] (producer rows, biases and offsets ×a, gains
    /// copied), or an exact copy (a = 1) where the group passes through a function that is not positively
    /// homogeneous (Clip, Sigmoid, an SE gate). Returns how many channels could not be made mergeable.
    /// </summary>
    public static int MakeMultiples(ChannelGroupSet groups, IReadOnlyDictionary<int, int[]> keepByGroupId, Random random)
    {
        var cache = new Dictionary<TensorProto, (Tensor Tensor, float[] Values)>(ReferenceEqualityComparer.Instance);
        float[] Floats(WeightRef w) => Load(cache, w);
        int failed = 0;
        foreach (var (id, keep) in keepByGroupId)
        {
            var group = groups[id];
            if (group.Frozen || keep.Length == group.Width) continue;
            var keepSet = keep.ToHashSet();
            var walk = new MergeWalk(groups, group, Floats);
            for (int j = 0; j < group.Width; j++)
            {
                if (keepSet.Contains(j)) continue;
                // Some kept channels cannot host j (another Split part): try them in random order.
                bool done = false;
                foreach (int i in keep.OrderBy(_ => random.Next()).Take(16))
                {
                    double a = 0.5 + 1.5 * random.NextDouble();
                    Copy(group, j, i, a, Floats);
                    if (walk.TryMerge(j, i) is not null) { done = true; break; }
                    Copy(group, j, i, 1, Floats);
                    if (walk.TryMerge(j, i) is not null) { done = true; break; }
                }
                if (!done) failed++;
            }
        }
        Store(cache);
        return failed;
    }

    private static void Copy(ChannelGroup group, int j, int i, double a, Func<WeightRef, float[]> floats)
    {
        foreach (var site in group.Sites.OfType<TensorSite>())
        {
            if (site.Role == SiteRole.ConsumerWeight) continue;
            int pj = site.Layout.PositionOf(group.Id, j), pi = site.Layout.PositionOf(group.Id, i);
            if (pj < 0 || pi < 0) continue;
            double factor = site.Role is SiteRole.ChannelGain or SiteRole.DepthwiseWeight ? 1 : a;
            var values = floats(site.Weight);
            long[] dims = site.Weight.Tensor.Dims;
            var (ej, inner) = site.Layout.ElementsOf(pj);
            var (ei, _) = site.Layout.ElementsOf(pi);
            var source = TensorSlicer.Take(values, dims, site.Axis, ei, inner);
            int storage = site.Weight.Tensor.DataType;
            Fill(values, dims, site.Axis, ej, inner, (index, _) => AsStored((float)(factor * source[index]), storage));
        }
    }

    /// <summary>The value the tensor will hold once written in its storage type (fp16 rounds), so checks see what the file will.</summary>
    private static float AsStored(float value, int dataType) => dataType switch
    {
        DataType.Float16 => (float)(Half)value,
        DataType.BFloat16 => BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(value) & unchecked((int)0xFFFF0000)),
        _ => value,
    };

    /// <summary>Sets elements [start, start+count) along axis to f(index within the taken block, old value).</summary>
    private static void Fill(float[] values, long[] dims, int axis, long start, long count, Func<int, float, float> f)
    {
        long outer = TensorSlicer.Product(dims, 0, axis), size = dims[axis], inner = TensorSlicer.Product(dims, axis + 1, dims.Length);
        int k = 0;
        for (long o = 0; o < outer; o++)
            for (long e = (o * size + start) * inner; e < (o * size + start + count) * inner; e++, k++)
                values[e] = f(k, values[e]);
    }

    private static float[] Load(Dictionary<TensorProto, (Tensor Tensor, float[] Values)> cache, WeightRef weight)
    {
        if (!cache.TryGetValue(weight.Tensor.Proto, out var entry)) cache[weight.Tensor.Proto] = entry = (weight.Tensor, weight.Tensor.ToFloats());
        return entry.Values;
    }

    private static void Store(Dictionary<TensorProto, (Tensor Tensor, float[] Values)> cache)
    {
        foreach (var (tensor, values) in cache.Values) tensor.SetFloats(tensor.Dims, values);
    }
}
