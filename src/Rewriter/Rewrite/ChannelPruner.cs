using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// Removes channels: given, per group, the sorted original channel indices to keep, slices every site of
/// the group (weights, biases, BatchNorm parameters, per-channel constants, counts in attributes and shape
/// constants), updates value_info shapes and drops initializers nothing reads any more. Node and tensor
/// names are kept. A tensor read by several nodes with one selection is sliced once, in place; readers that
/// need different selections (an equal bias the exporter stored once) get sliced copies, readers that need
/// none keep the original. The group set describes the graph before the edit and must not be reused afterwards.
/// </summary>
public static class ChannelPruner
{
    public static RewriteResult Apply(OnnxModel model, ChannelGroupSet groups, IReadOnlyDictionary<int, int[]> keepByGroupId, RewriteOptions? options = null) =>
        Apply(model.Graph, groups, keepByGroupId, options);

    public static RewriteResult Apply(Graph graph, ChannelGroupSet groups, IReadOnlyDictionary<int, int[]> keepByGroupId, RewriteOptions? options = null)
    {
        options ??= new RewriteOptions();
        if (!ReferenceEquals(graph, groups.Graph)) throw new ArgumentException("the channel groups were found on another graph", nameof(groups));
        var keep = Validate(groups, keepByGroupId);
        int[] KeepOf(int group) => keep[group];

        // Float data of every tensor the plans read, loaded once (the plans run on several threads: the first to ask loads it).
        var planData = new ConcurrentDictionary<Tensor, Lazy<float[]>>();
        float[] Floats(WeightRef weight) => planData.GetOrAdd(weight.Tensor, t => new Lazy<float[]>(t.ToFloats)).Value;

        // Everything is planned on the original weights, then applied together: merging and folding only add
        // to kept columns of the reading layers, which no other plan reads (plans read filter rows and
        // per-channel parameters), so the plans do not interfere and the result does not depend on order.
        // Each plan reads only the weights, the graph and the group set, and writes only its own result, so the
        // groups are planned side by side, widest first, and their results joined in group order: the same
        // additions and bias changes in the same order as one group after another. Why: VGG-16's second
        // classifier group's fold (its Gram of 4096 rows, ~0.7 s) ran after the 13 conv groups' (~0.3 s) on
        // cores they left idle much of the time.
        var planned = groups.Where(g => g.Prunable && keep[g.Id].Length < g.Width).ToArray();
        var plans = new GroupPlan[planned.Length];
        int[] widestFirst = [.. Enumerable.Range(0, planned.Length).OrderByDescending(k => planned[k].Width).ThenBy(k => k)];
        try
        {
            Parallel.ForEach(Partitioner.Create(widestFirst, EnumerablePartitionerOptions.NoBuffering),
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) },
                k => plans[k] = PlanGroup(groups, planned[k], keep[planned[k].Id], Floats, options));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw(); // what the caller got when the groups were planned in turn
        }
        // Any Gram planning kept for a group that was not planned here goes too.
        foreach (var gram in options.PlannedGrams?.Values ?? []) gram.Release();
        var additions = new List<MergeAddition>();
        var biasDeltas = new List<BiasDelta>();
        int merged = 0, folded = 0, withoutStatistics = 0;
        foreach (var plan in plans)
        {
            additions.AddRange(plan.Additions);
            biasDeltas.AddRange(plan.Biases);
            merged += plan.Merged;
            folded += plan.Folded;
            withoutStatistics += plan.WithoutStatistics;
        }
        // The plans' float copies go now; each tensor is loaded again, alone, when it is sliced, with its additions
        // applied then (VGG-16's rewrite held every copy, 553 MB, beside the original weights and the sliced ones).
        long planBytes = planData.Values.Sum(v => v.IsValueCreated ? 4L * v.Value.Length : 0);
        planData.Clear();
        // Collected now when they are large, before the slicing loads its copies on top: a fold that builds its Gram
        // set off a full collection here anyway (VGG-16's second classifier group's 134 MB), one that reads the Gram
        // planning kept does not, and the slicing's peak rose by ~150 MB over the uncollected copies (1,505 → 1,592–1,639 MiB).
        if (planBytes > PlanCopiesCollected) GC.Collect();
        var data = new Dictionary<Tensor, (Tensor Tensor, float[] Values)>();
        // Per tensor and axis, in list order (additions to different tensors or axes do not touch each other's elements).
        var runsOf = new Dictionary<Tensor, List<AdditionRun>>();
        foreach (var run in additions.GroupBy(a => (a.Weight.Tensor, a.Axis)))
        {
            var first = run.First();
            if (!runsOf.TryGetValue(first.Weight.Tensor, out var runs)) runsOf[first.Weight.Tensor] = runs = [];
            runs.Add(new AdditionRun(first.Axis, first.Dims, [.. run.Select(a => (a.From, a.To, a.Count, a.Ratio))]));
        }
        float[] Merged(WeightRef weight)
        {
            if (!data.TryGetValue(weight.Tensor, out var entry))
            {
                var values = weight.Tensor.ToFloats();
                foreach (var run in runsOf.GetValueOrDefault(weight.Tensor) ?? []) TensorSlicer.AddScaledAll(values, run.Dims, run.Axis, run.Additions);
                data[weight.Tensor] = entry = (weight.Tensor, values);
            }
            return entry.Values;
        }

        var orphanCandidates = new List<Node>();
        UpdateValueInfo(graph, groups, KeepOf);
        // Each tensor's float copy is dropped once its sliced bytes are written: the copies of every weight plus the
        // sliced results would otherwise be alive together at the end (VGG-16: 553 MB of copies).
        int sliced = SliceTensors(graph, groups, KeepOf, Merged, w => data.Remove(w.Tensor), runsOf, orphanCandidates);
        data.Clear();
        graph.Reindex();
        RewriteCounts(graph, groups, KeepOf, orphanCandidates);
        var notes = new List<string>();
        int corrected = 0;
        if (biasDeltas.Count > 0)
        {
            var (written, writerNotes) = BiasWriter.Apply(graph, groups, KeepOf, biasDeltas, orphanCandidates);
            corrected = written;
            notes.AddRange(writerNotes);
        }
        if (options.BiasCorrection && withoutStatistics > 0)
            notes.Add(corrected == 0
                ? "bias correction skipped: the removed channels have no BatchNorm statistics (BatchNorm folded into the convs, or no BatchNorm before the next layer)"
                : $"bias correction: {withoutStatistics} removed channel inputs had no BatchNorm statistics and were not corrected");
        RemoveDead(graph, orphanCandidates);
        graph.RemoveUnusedInitializers();

        var removed = groups.Where(g => keep[g.Id].Length < g.Width).ToDictionary(g => g.Id, g => g.Width - keep[g.Id].Length);
        return new RewriteResult(removed, merged, sliced) { Folded = folded, BiasCorrected = corrected, Notes = notes };
    }

    /// <summary>Float copies the plans may leave behind uncollected before the slicing starts (see <see cref="Apply(Graph, ChannelGroupSet, IReadOnlyDictionary{int, int[]}, RewriteOptions?)"/>).</summary>
    private const long PlanCopiesCollected = 256L << 20;

    /// <summary>One group's plan: the exact merge's additions, then the compensation's, and its bias changes and counts.</summary>
    private sealed record GroupPlan(List<MergeAddition> Additions, List<BiasDelta> Biases, int Merged, int Folded, int WithoutStatistics);

    private static GroupPlan PlanGroup(ChannelGroupSet groups, ChannelGroup group, int[] keep, Func<WeightRef, float[]> floats, RewriteOptions options)
    {
        var additions = new List<MergeAddition>();
        var biases = new List<BiasDelta>();
        int merged = 0, folded = 0, withoutStatistics = 0;
        IReadOnlySet<int> exact = new HashSet<int>();
        List<MergeAddition> exactAdditions = [];
        if (options.Compensation != Compensation.None)
        {
            (exactAdditions, var channels) = MergePlanner.Plan(groups, group, keep, floats);
            additions.AddRange(exactAdditions);
            merged = channels.Count;
            exact = channels;
        }
        if (options.Compensation == Compensation.LeastSquares || options.BiasCorrection || options.VarianceCorrection)
        {
            var plan = CompensationPlanner.Plan(groups, group, keep, exact, exactAdditions, floats, options);
            additions.AddRange(plan.Additions);
            biases.AddRange(plan.Biases);
            folded = plan.Folded;
            withoutStatistics = plan.WithoutStatistics;
        }
        // The Gram planning kept for this group's fold is read by now: it goes (134 MB for a 4096-wide group), and is
        // collected at once, before the other plans' copies pile up on top (VGG-16's last conv group copies the first
        // classifier layer's 411 MB weight, and a clone of it): left to the GC, the rewrite's peak was 1,593–1,683 MiB
        // in 5 of 6 runs against main's 1,459–1,506 (which built the Gram after those copies were garbage); collected,
        // 1,425–1,472.
        if (options.PlannedGrams?.GetValueOrDefault(group.Id) is { } gram)
        {
            gram.Release();
            GC.Collect();
        }
        return new GroupPlan(additions, biases, merged, folded, withoutStatistics);
    }

    private static int[][] Validate(ChannelGroupSet groups, IReadOnlyDictionary<int, int[]> keepByGroupId)
    {
        var keep = groups.Select(g => Enumerable.Range(0, g.Width).ToArray()).ToArray();
        foreach (var (id, indices) in keepByGroupId)
        {
            if (id < 0 || id >= groups.Count) throw new ArgumentException($"no channel group {id} (the model has {groups.Count})", nameof(keepByGroupId));
            var group = groups[id];
            if (indices is null || indices.Length == 0) throw new ArgumentException($"group {id} must keep at least one channel", nameof(keepByGroupId));
            for (int k = 0; k < indices.Length; k++)
            {
                if (indices[k] < 0 || indices[k] >= group.Width)
                    throw new ArgumentException($"group {id} has {group.Width} channels; cannot keep channel {indices[k]}", nameof(keepByGroupId));
                if (k > 0 && indices[k] <= indices[k - 1])
                    throw new ArgumentException($"group {id}: keep indices must be sorted and distinct, got {indices[k - 1]} then {indices[k]}", nameof(keepByGroupId));
            }
            if (group.Frozen && indices.Length != group.Width)
                throw new ArgumentException($"group {id} is frozen ({group.Reason}); it must keep all {group.Width} channels", nameof(keepByGroupId));
            if (!group.KeepsEqualBlocks(indices))
                throw new ArgumentException($"group {id} is {group.Blocks} conv groups of {group.BlockWidth} channels; keep the same count in each, got {indices.Length} channels in total", nameof(keepByGroupId));
            keep[id] = indices;
        }
        return keep;
    }

    /// <summary>
    /// The original output channels <paramref name="producer"/> keeps under a keep plan, in order; null when it keeps
    /// them all or writes no group. Its output may hold several groups (the sub-ranges of a split C2f), so this is not
    /// one group's keep list.
    /// </summary>
    public static int[]? KeptOutputs(ChannelGroupSet groups, Node producer, IReadOnlyDictionary<int, int[]> keepByGroupId)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(producer);
        var site = groups.Sites.OfType<TensorSite>().FirstOrDefault(s => s.Node.Equals(producer) && s.Role is SiteRole.ProducerWeight or SiteRole.DepthwiseWeight);
        if (site is null) return null;
        var kept = Indices(site.Layout, g => keepByGroupId.TryGetValue(g, out var k) ? k : [.. Enumerable.Range(0, groups[g].Width)]);
        return kept.Length == site.Layout.Channels ? null : kept;
    }

    /// <summary>Indices along a sliced axis: for each segment, its kept channels, each spanning its inner elements.</summary>
    internal static int[] Indices(ChannelLayout layout, Func<int, int[]> keepOf)
    {
        var result = new List<int>();
        long element = 0;
        foreach (var s in layout.Segments)
        {
            foreach (int c in keepOf(s.Group))
            {
                if (c < s.Start || c >= s.End) continue;
                long first = element + (c - s.Start) * s.Inner;
                for (long t = 0; t < s.Inner; t++) result.Add(checked((int)(first + t)));
            }
            element += s.Length * s.Inner;
        }
        return [.. result];
    }

    /// <summary>Kept channels of the layout at channel positions [from, to).</summary>
    internal static int KeptIn(ChannelLayout layout, int from, int to, Func<int, int[]> keepOf)
    {
        int count = 0, offset = 0;
        foreach (var s in layout.Segments)
        {
            foreach (int c in keepOf(s.Group))
            {
                int position = offset + c - s.Start;
                if (c >= s.Start && c < s.End && position >= from && position < to) count++;
            }
            offset += s.Length;
        }
        return count;
    }

    /// <summary>
    /// Slices every stored tensor with sites. Readers are grouped by the selection they need: one selection
    /// read by every reader is applied in place; otherwise each changed selection gets its own copy (a bias
    /// two layers share only because its values are equal; a weight some other node reads whole), and
    /// readers without a site keep the original.
    /// </summary>
    /// <param name="floats">A tensor's values with its additions applied.</param>
    private static int SliceTensors(Graph graph, ChannelGroupSet groups, Func<int, int[]> keepOf, Func<WeightRef, float[]> floats,
        Action<WeightRef> release, IReadOnlyDictionary<Tensor, List<AdditionRun>> runsOf, List<Node> orphanCandidates)
    {
        int count = 0;
        var groupedInputs = new Dictionary<Tensor, GroupedInputSite>();
        foreach (var site in groups.Sites.OfType<GroupedInputSite>()) groupedInputs[site.Weight.Tensor] = site;
        foreach (var sites in groups.Sites.OfType<TensorSite>().GroupBy(s => s.Weight.Tensor))
        {
            var weight = sites.First().Weight;
            long[] dims = weight.Tensor.Dims;
            if (groupedInputs.Remove(weight.Tensor, out var grouped))
            {
                // A grouped conv's weight (its own, by construction): rows first take their block's kept inputs.
                var blocked = BlockIndices(grouped, keepOf);
                long[] newDims = [.. dims];
                float[] whole = floats(weight), values = whole;
                if (blocked[0].Length != dims[grouped.Axis]) values = TensorSlicer.GatherBlocked(values, newDims, grouped.OutputAxis, grouped.Axis, blocked);
                foreach (var site in sites)
                {
                    var indices = Indices(site.Layout, keepOf);
                    if (indices.Length != newDims[site.Axis]) values = TensorSlicer.Gather(values, newDims, site.Axis, indices);
                }
                release(weight);
                if (newDims.SequenceEqual(dims) && !runsOf.ContainsKey(weight.Tensor)) continue;
                count++;
                // A gathered array is this tensor's alone: the tensor takes it over (no copy at the rewrite's peak).
                if (ReferenceEquals(values, whole)) weight.Tensor.SetFloats(newDims, values);
                else weight.Tensor.TakeFloats(newDims, values, values.Length);
                SetDeclaredDims(graph, weight, newDims);
                continue;
            }
            bool merged = runsOf.ContainsKey(weight.Tensor);
            var selections = new List<(SortedDictionary<int, int[]> Cuts, List<TensorSite> Readers)>();
            foreach (var reader in sites.GroupBy(s => (s.Node, s.InputIndex)))
            {
                var cuts = new SortedDictionary<int, int[]>();
                foreach (var site in reader)
                {
                    var indices = Indices(site.Layout, keepOf);
                    if (cuts.TryGetValue(site.Axis, out var other) && !other.AsSpan().SequenceEqual(indices))
                        throw new InvalidOperationException($"{site.Node} reads weight '{weight.Tensor.Name}' with two channel selections on axis {site.Axis}");
                    cuts[site.Axis] = indices;
                }
                var same = selections.FindIndex(x => SameCuts(x.Cuts, cuts));
                if (same >= 0) selections[same].Readers.Add(reader.First());
                else selections.Add((cuts, [reader.First()]));
            }
            var siteReaders = sites.Select(s => (s.Node, s.InputIndex)).ToHashSet();
            bool otherReaders = graph.IsGraphOutput(WeightReaders.StoredName(weight))
                || WeightReaders.Of(graph, WeightReaders.StoredName(weight)).Any(r => !siteReaders.Contains((r.Node, r.Index)));
            bool inPlace = selections.Count == 1 && !otherReaders;
            foreach (var (cuts, readers) in selections)
            {
                bool changes = cuts.Any(c => c.Value.Length != dims[c.Key]);
                if (!changes && !merged) continue;
                long[] newDims = [.. dims];
                if (changes) count++;
                if (inPlace && weight.Tensor.TryGetRawFloats(out var stored) &&
                    TensorSlicer.GatherAdded(stored, newDims, cuts, runsOf.GetValueOrDefault(weight.Tensor) ?? []) is { } direct)
                {
                    // Sliced straight from the stored bytes, additions and all: no float copy of the whole tensor.
                    weight.Tensor.TakeFloats(newDims, direct, direct.Length);
                    SetDeclaredDims(graph, weight, newDims);
                    continue;
                }
                float[] values = floats(weight);
                if (inPlace && cuts.All(c => Ascending(c.Value)))
                {
                    // The float copy is this tensor's alone (one selection, no other reader): slice it in place and
                    // let the tensor take it over, instead of a gathered copy and then its bytes beside it.
                    int kept = values.Length;
                    foreach (var (axis, indices) in cuts)
                        if (indices.Length != dims[axis]) kept = TensorSlicer.GatherInPlace(values.AsSpan(0, kept), newDims, axis, indices);
                    weight.Tensor.TakeFloats(newDims, values, kept);
                    SetDeclaredDims(graph, weight, newDims);
                    continue;
                }
                foreach (var (axis, indices) in cuts)
                    if (indices.Length != dims[axis]) values = TensorSlicer.Gather(values, newDims, axis, indices);
                foreach (var reader in readers)
                {
                    // The copy holds what the reader received (after any Cast), so the reader is wired to it directly.
                    string copy = graph.UniqueName($"{weight.Tensor.Name}_{reader.Node.Id}");
                    var tensor = Tensor.FromFloats(copy, newDims, values, ReceivedType(graph, reader.Value, weight.Tensor.DataType));
                    graph.AddInitializer(tensor);
                    orphanCandidates.AddRange(PassThroughs(graph, reader.Value));
                    if (weight.ConstantNode is { } constant) orphanCandidates.Add(constant);
                    reader.Node.Inputs[reader.InputIndex] = copy;
                }
            }
            release(weight);
        }
        return count;
    }

    private static bool Ascending(int[] indices)
    {
        for (int k = 1; k < indices.Length; k++) if (indices[k] <= indices[k - 1]) return false;
        return true;
    }

    /// <summary>Per conv group of a grouped input, the kept input channels of its block, relative to the block.</summary>
    private static int[][] BlockIndices(GroupedInputSite site, Func<int, int[]> keepOf)
    {
        var positions = Indices(site.Layout, keepOf);
        int perBlock = site.Layout.Channels / site.Blocks;
        var result = Enumerable.Range(0, site.Blocks).Select(b => positions.Where(p => p / perBlock == b).Select(p => p - b * perBlock).ToArray()).ToArray();
        if (result.Any(r => r.Length != result[0].Length))
            throw new InvalidOperationException($"{site.Node} would keep unequal input counts per conv group");
        return result;
    }

    private static bool SameCuts(SortedDictionary<int, int[]> a, SortedDictionary<int, int[]> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var other) && other.AsSpan().SequenceEqual(kv.Value));

    /// <summary>The element type a reader receives: the last Cast's target on the way from the stored tensor, else the stored type.</summary>
    private static int ReceivedType(Graph graph, string value, int storedType)
    {
        for (var node = graph.Producer(value); node is { OpType: "Identity" or "Cast" }; node = graph.Producer(node.Input(0)))
            if (node.OpType == "Cast") return (int)node.GetInt("to", storedType);
        return storedType;
    }

    private static IEnumerable<Node> PassThroughs(Graph graph, string value)
    {
        for (var node = graph.Producer(value); node is { OpType: "Identity" or "Cast" }; node = graph.Producer(node.Input(0)))
            yield return node;
    }

    /// <summary>Removes the pass-through and Constant nodes we left unread, repeatedly (a dead Cast can orphan its Identity).</summary>
    private static void RemoveDead(Graph graph, List<Node> candidates)
    {
        var pending = candidates.Distinct().ToList();
        for (bool changed = true; changed;)
        {
            changed = false;
            graph.Reindex();
            foreach (var node in pending.ToList())
            {
                if (node.Outputs.Any(o => graph.Consumers(o).Count > 0 || graph.IsGraphOutput(o))) continue;
                graph.RemoveNode(node);
                pending.Remove(node);
                // What fed only this node is dead too (a shape computation whose result became a constant).
                foreach (string input in node.Inputs)
                    if (graph.Producer(input) is { } producer && !pending.Contains(producer)) pending.Add(producer);
                changed = true;
            }
        }
    }

    /// <summary>value_info of the stored tensor and of the Identity/Cast outputs it passes through get the new dims.</summary>
    private static void SetDeclaredDims(Graph graph, WeightRef weight, long[] dims)
    {
        var names = new List<string> { weight.ConstantNode?.Outputs[0] ?? weight.Tensor.Name };
        var frontier = new Queue<string>(names);
        while (frontier.Count > 0)
            foreach (var consumer in graph.Consumers(frontier.Dequeue()))
                if (consumer.OpType is "Identity" or "Cast" && consumer.Inputs.Count == 1)
                {
                    names.Add(consumer.Outputs[0]);
                    frontier.Enqueue(consumer.Outputs[0]);
                }
        foreach (var name in names) graph.SetDeclaredDims(name, dims);
    }

    /// <summary>Writes the new counts; constants read by other nodes too are copied first (Constant nodes left unread become orphan candidates).</summary>
    private static void RewriteCounts(Graph graph, ChannelGroupSet groups, Func<int, int[]> keepOf, List<Node> orphanCandidates)
    {
        foreach (var sites in groups.Sites.OfType<CountSite>().GroupBy(s => (s.Node, s.Attribute, s.InputIndex)))
        {
            var (node, attribute, inputIndex) = sites.Key;
            var values = sites.Select(s => (s.Element, Value: KeptIn(s.Layout, s.From, s.To, keepOf) * s.Multiplier)).ToList();
            if (attribute is not null)
            {
                foreach (var (element, value) in values)
                {
                    if (element < 0) { node.SetInt(attribute, value); continue; }
                    long[] ints = node.GetInts(attribute)!;
                    ints[element] = value;
                    node.SetInts(attribute, ints);
                }
                continue;
            }
            string name = node.Input(inputIndex);
            if (sites.First().Computed is { } computed)
            {
                // A count computed from the shape: the node gets a constant of the kept counts; the computation may die.
                long[] counts = [.. computed];
                foreach (var (element, value) in values) counts[element] = value;
                string constant = graph.UniqueName($"{name}_{node.Id}");
                graph.AddInitializer(Tensor.FromInt64s(constant, [counts.Length], counts));
                if (graph.Producer(name) is { } producer) orphanCandidates.Add(producer);
                node.Inputs[inputIndex] = constant;
                graph.Reindex();
                continue;
            }
            var tensor = graph.Constant(name) ?? throw new InvalidOperationException($"{node} input '{name}' is no longer a constant");
            long[] numbers = tensor.ToInt64s();
            if (values.All(v => numbers[v.Element] == v.Value)) continue;
            foreach (var (element, value) in values) numbers[element] = value;
            bool shared = graph.Consumers(name).Any(c => !c.Equals(node)) || graph.IsGraphOutput(name);
            if (shared)
            {
                // Copy-on-write: other readers keep the old numbers.
                string copy = graph.UniqueName($"{name}_{node.Id}");
                graph.AddInitializer(Tensor.FromInt64s(copy, tensor.Dims, numbers, tensor.DataType));
                if (graph.Producer(name) is { OpType: "Constant" } constant) orphanCandidates.Add(constant);
                node.Inputs[inputIndex] = copy;
                graph.Reindex();
            }
            else tensor.SetInt64s(tensor.Dims, numbers);
        }
    }

    /// <summary>Channel dims in value_info become the kept counts (or unknown when the inner size is not known).</summary>
    private static void UpdateValueInfo(Graph graph, ChannelGroupSet groups, Func<int, int[]> keepOf)
    {
        foreach (var (value, layout) in groups.Layouts)
        {
            if (KeptIn(layout, 0, layout.Channels, keepOf) == layout.Channels) continue;
            graph.SetDeclaredDim(value, layout.Rank, layout.Axis, layout.InnerKnown ? Indices(layout, keepOf).Length : null);
        }
    }
}
