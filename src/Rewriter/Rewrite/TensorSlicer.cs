using System.Runtime.Intrinsics;

namespace OnnxSlim.Rewriter;

/// <summary>Row-major tensor helpers on spans: gather indices along one axis, read and add sub-blocks.</summary>
internal static class TensorSlicer
{
    /// <summary>Product of dims [from, to).</summary>
    public static long Product(ReadOnlySpan<long> dims, int from, int to)
    {
        long n = 1;
        for (int d = from; d < to; d++) n *= dims[d];
        return n;
    }

    /// <summary>
    /// As <see cref="Gather"/> for ascending <paramref name="indices"/>, compacting the first elements of
    /// <paramref name="data"/> in place (every kept block moves towards the start, never over one not yet moved);
    /// returns how many elements the result holds and updates <paramref name="dims"/>. Why: VGG-16's first classifier
    /// layer is 411 MB as floats, and a gathered copy beside it was 295 MB more at the rewrite's peak.
    /// </summary>
    public static int GatherInPlace(Span<float> data, long[] dims, int axis, ReadOnlySpan<int> indices)
    {
        if (axis < 0 || axis >= dims.Length) throw new ArgumentException($"axis {axis} is outside rank {dims.Length}", nameof(axis));
        long outer = Product(dims, 0, axis), size = dims[axis], inner = Product(dims, axis + 1, dims.Length);
        if (data.Length < outer * size * inner) throw new ArgumentException($"{data.Length} values do not fill [{string.Join(",", dims)}]", nameof(data));
        for (int k = 0; k < indices.Length; k++)
            if (indices[k] < 0 || indices[k] >= size || (k > 0 && indices[k] <= indices[k - 1]))
                throw new ArgumentException($"index {indices[k]} is not ascending within 0..{size - 1} on axis {axis}", nameof(indices));
        for (long o = 0; o < outer; o++)
            for (int k = 0; k < indices.Length; k++)
                data.Slice((int)((o * size + indices[k]) * inner), (int)inner).CopyTo(data.Slice((int)((o * indices.Length + k) * inner), (int)inner));
        dims[axis] = indices.Length;
        return checked((int)(outer * indices.Length * inner));
    }

    /// <summary>
    /// The slice of <paramref name="original"/> under <paramref name="cuts"/> (axis → kept indices) with the
    /// <paramref name="runs"/> of additions applied, gathered straight from the original values: the bits of applying
    /// the additions to a whole copy and then gathering (each kept element gets the same additions in the same order,
    /// each reading an original removed element), without the whole copy. Null (take the copy's way) unless one axis is
    /// cut, the additions all lie along it, and they read only removed elements. Updates <paramref name="dims"/>.
    /// </summary>
    public static float[]? GatherAdded(ReadOnlyMemory<byte> stored, long[] dims, IReadOnlyDictionary<int, int[]> cuts, IReadOnlyList<AdditionRun> runs)
    {
        var cut = cuts.Where(c => c.Value.Length != dims[c.Key]).ToList();
        if (cut.Count != 1) return null;
        int axis = cut[0].Key;
        int[] indices = cut[0].Value;
        if (runs.Any(r => r.Axis != axis || !r.Dims.AsSpan().SequenceEqual(dims))) return null;
        long outer = Product(dims, 0, axis), size = dims[axis], inner = Product(dims, axis + 1, dims.Length);
        if (stored.Length / sizeof(float) < outer * size * inner) return null;
        var position = new int[size];
        Array.Fill(position, -1);
        for (int k = 0; k < indices.Length; k++)
        {
            if (indices[k] < 0 || indices[k] >= size) throw new ArgumentException($"index {indices[k]} is outside 0..{size - 1} on axis {axis}", nameof(cuts));
            position[indices[k]] = k;
        }
        foreach (var run in runs)
            foreach (var (from, _, count, _) in run.Additions)
                for (long t = 0; t < count; t++)
                    if (position[from + t] >= 0) return null; // reads a kept element, which an earlier addition may have changed
        int kept = indices.Length;
        // The stretches of targets kept side by side (a kept channel's elements; removed ones are gathered away), in the
        // additions' order, then applied one outer slice at a time: each element gets the same additions in the same
        // order as stretch by stretch, but the slices are read and written in memory order (a Gemm's weight folded along
        // its input axis was 1000 strided passes per addition).
        var stretches = new List<(int K, long Source, long Length, double Ratio)>();
        long added = 0;
        foreach (var run in runs)
            foreach (var (from, to, count, ratio) in run.Additions)
                for (long t = 0; t < count;)
                {
                    int k = position[to + t];
                    long length = 1;
                    if (k >= 0) while (t + length < count && position[to + t + length] == k + length) length++;
                    if (k >= 0) { stretches.Add((k, from + t, length, ratio)); added += length * inner; }
                    t += length;
                }
        var result = new float[outer * kept * inner];
        // Each outer slice is gathered, then given its additions while it is in cache; the slices are independent, so
        // they are split between the cores (VGG-16's first classifier layer, 411 MB read and 295 MB written, with 2,300
        // stretches of 49 values added per row: ~1 CPU s on one core in the rewrite's serial slicing).
        void Slices(long first, long end)
        {
            var original = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(stored.Span);
            for (long o = first; o < end; o++)
            {
                var block = original.Slice((int)(o * size * inner), (int)(size * inner));
                var into = result.AsSpan((int)(o * kept * inner), (int)(kept * inner));
                for (int k = 0; k < kept; k++) block.Slice((int)(indices[k] * inner), (int)inner).CopyTo(into.Slice((int)(k * inner), (int)inner));
                foreach (var (k, from, length, ratio) in stretches)
                    AddScaled(into.Slice((int)(k * inner), (int)(length * inner)), block.Slice((int)(from * inner), (int)(length * inner)), ratio);
            }
        }
        int parts = (int)Math.Min(Math.Max(1, Environment.ProcessorCount), outer);
        if (parts < 2 || outer * (kept * inner + added) < ParallelMinElements) Slices(0, outer);
        else Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p => Slices(outer * p / parts, outer * (p + 1) / parts));
        dims[axis] = kept;
        return result;
    }

    /// <summary>Keeps the elements at <paramref name="indices"/> along <paramref name="axis"/>; returns the new data and updates <paramref name="dims"/>.</summary>
    public static float[] Gather(ReadOnlySpan<float> data, long[] dims, int axis, ReadOnlySpan<int> indices)
    {
        if (axis < 0 || axis >= dims.Length) throw new ArgumentException($"axis {axis} is outside rank {dims.Length}", nameof(axis));
        long outer = Product(dims, 0, axis), size = dims[axis], inner = Product(dims, axis + 1, dims.Length);
        if (data.Length != outer * size * inner) throw new ArgumentException($"{data.Length} values do not fill [{string.Join(",", dims)}]", nameof(data));
        var result = new float[outer * indices.Length * inner];
        var target = result.AsSpan();
        for (long o = 0; o < outer; o++)
        {
            var block = data.Slice((int)(o * size * inner), (int)(size * inner));
            var into = target.Slice((int)(o * indices.Length * inner), (int)(indices.Length * inner));
            for (int k = 0; k < indices.Length; k++)
            {
                int index = indices[k];
                if (index < 0 || index >= size) throw new ArgumentException($"index {index} is outside 0..{size - 1} on axis {axis}", nameof(indices));
                block.Slice((int)(index * inner), (int)inner).CopyTo(into.Slice((int)(k * inner), (int)inner));
            }
        }
        dims[axis] = indices.Length;
        return result;
    }

    /// <summary>
    /// Per slab along <paramref name="blockAxis"/> (a grouped conv's output axis, before <paramref name="axis"/>):
    /// slab o lies in block b = o / (dims[blockAxis] / blocks) and keeps the elements at indices[b] along
    /// <paramref name="axis"/>. Every block keeps the same count; returns the new data and updates <paramref name="dims"/>.
    /// </summary>
    public static float[] GatherBlocked(ReadOnlySpan<float> data, long[] dims, int blockAxis, int axis, IReadOnlyList<int[]> indices)
    {
        if (blockAxis < 0 || axis <= blockAxis || axis >= dims.Length) throw new ArgumentException($"block axis {blockAxis} must precede axis {axis} in rank {dims.Length}", nameof(axis));
        int blocks = indices.Count, count = indices[0].Length;
        if (blocks == 0 || dims[blockAxis] % blocks != 0 || indices.Any(i => i.Length != count))
            throw new ArgumentException($"{blocks} blocks with unequal counts do not fit {dims[blockAxis]} slabs", nameof(indices));
        long outer = Product(dims, 0, blockAxis), slabs = dims[blockAxis], between = Product(dims, blockAxis + 1, axis);
        long size = dims[axis], inner = Product(dims, axis + 1, dims.Length), perBlock = slabs / blocks;
        if (data.Length != outer * slabs * between * size * inner) throw new ArgumentException($"{data.Length} values do not fill [{string.Join(",", dims)}]", nameof(data));
        var result = new float[outer * slabs * between * count * inner];
        long at = 0;
        for (long a = 0; a < outer; a++)
            for (long o = 0; o < slabs; o++)
            {
                var keep = indices[(int)(o / perBlock)];
                for (long m = 0; m < between; m++)
                {
                    long source = ((a * slabs + o) * between + m) * size * inner;
                    foreach (int index in keep)
                    {
                        if (index < 0 || index >= size) throw new ArgumentException($"index {index} is outside 0..{size - 1} on axis {axis}", nameof(indices));
                        data.Slice((int)(source + index * inner), (int)inner).CopyTo(result.AsSpan((int)at, (int)inner));
                        at += inner;
                    }
                }
            }
        dims[axis] = count;
        return result;
    }

    /// <summary>The sub-tensor of elements [start, start+count) along <paramref name="axis"/>.</summary>
    public static float[] Take(ReadOnlySpan<float> data, ReadOnlySpan<long> dims, int axis, long start, long count)
    {
        long outer = Product(dims, 0, axis), size = dims[axis], inner = Product(dims, axis + 1, dims.Length);
        var result = new float[outer * count * inner];
        for (long o = 0; o < outer; o++)
            data.Slice((int)((o * size + start) * inner), (int)(count * inner)).CopyTo(result.AsSpan((int)(o * count * inner)));
        return result;
    }

    /// <summary>
    /// Every addition in turn, as <see cref="AddScaled"/> would apply them one after another, all on one tensor and axis.
    /// The same result bit for bit (an addition reads and writes only its own outer slab, so each slab sees the
    /// additions in the same order), but one pass over the slabs: applied one by one, 16,000 folds into a
    /// 4096-wide Gemm's input axis (inner 1) walk the 64 MB weight 16,000 times with a 16 KB stride.
    /// </summary>
    public static void AddScaledAll(float[] data, long[] dims, int axis, (long From, long To, long Count, double Ratio)[] additions)
    {
        long outer = Product(dims, 0, axis), size = dims[axis], inner = Product(dims, axis + 1, dims.Length);
        long perSlab = 0;
        foreach (var a in additions) perSlab += a.Count * inner;
        // The slabs are independent: split between the cores when there is enough to split (Faster R-CNN's folds into
        // the 2048-wide group's readers: ~0.4 CPU s on one core, in the rewrite's serial slicing).
        int parts = (int)Math.Min(Math.Max(1, Environment.ProcessorCount), outer);
        if (parts < 2 || outer * perSlab < ParallelMinElements) { AddToSlabs(data, 0, outer, size, inner, additions); return; }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts },
            p => AddToSlabs(data, outer * p / parts, outer * (p + 1) / parts, size, inner, additions));
    }

    /// <summary>Below this many element updates, <see cref="AddScaledAll"/> stays on one core.</summary>
    private const long ParallelMinElements = 1 << 20;

    private static void AddToSlabs(float[] data, long first, long end, long size, long inner, (long From, long To, long Count, double Ratio)[] additions)
    {
        for (long o = first; o < end; o++)
        {
            var slab = data.AsSpan((int)(o * size * inner), (int)(size * inner));
            foreach (var (from, to, count, ratio) in additions)
            {
                var source = slab.Slice((int)(from * inner), (int)(count * inner));
                AddScaled(slab.Slice((int)(to * inner), (int)(count * inner)), source, ratio);
            }
        }
    }

    /// <summary>Along <paramref name="axis"/>: elements [to, to+count) += ratio × elements [from, from+count).</summary>
    public static void AddScaled(Span<float> data, ReadOnlySpan<long> dims, int axis, long from, long to, long count, double ratio)
    {
        long outer = Product(dims, 0, axis), size = dims[axis], inner = Product(dims, axis + 1, dims.Length);
        for (long o = 0; o < outer; o++)
        {
            var source = data.Slice((int)((o * size + from) * inner), (int)(count * inner));
            AddScaled(data.Slice((int)((o * size + to) * inner), (int)(count * inner)), source, ratio);
        }
    }

    /// <summary>
    /// target[e] = (float)(target[e] + ratio·source[e]) in float64, the product rounded, then the sum (not fused), then
    /// narrowed: the same bits as that scalar loop, eight or sixteen values at a time.
    /// </summary>
    internal static void AddScaled(Span<float> target, ReadOnlySpan<float> source, double ratio)
    {
        if (source.Length != target.Length) throw new ArgumentException($"{source.Length} source values for {target.Length} targets", nameof(source));
        int e = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var r = Vector512.Create(ratio);
            for (; e + 16 <= target.Length; e += 16)
            {
                var (tl, th) = Vector512.Widen(Vector512.Create(target.Slice(e, 16)));
                var (sl, sh) = Vector512.Widen(Vector512.Create(source.Slice(e, 16)));
                Vector512.Narrow(tl + r * sl, th + r * sh).CopyTo(target.Slice(e, 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var r = Vector256.Create(ratio);
            for (; e + 8 <= target.Length; e += 8)
            {
                var (tl, th) = Vector256.Widen(Vector256.Create(target.Slice(e, 8)));
                var (sl, sh) = Vector256.Widen(Vector256.Create(source.Slice(e, 8)));
                Vector256.Narrow(tl + r * sl, th + r * sh).CopyTo(target.Slice(e, 8));
            }
        }
        for (; e < target.Length; e++) target[e] = (float)(target[e] + ratio * source[e]);
    }
}

/// <summary>Additions along one axis of one weight, in the order they are applied (see <see cref="TensorSlicer.AddScaledAll"/>).</summary>
internal sealed record AdditionRun(int Axis, long[] Dims, (long From, long To, long Count, double Ratio)[] Additions);
