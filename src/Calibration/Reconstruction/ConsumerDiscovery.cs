using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// Turns the layers to re-fit (<see cref="RefitLayer"/>: Conv, Gemm and MatMul reading pruned channels) into fitting
/// units, one per weight tensor. What cannot be fitted comes back with a reason. Layers whose inputs were all kept
/// are not re-fitted even where they read a re-fitted layer's result: on PP-OCRv4 rec at −50 % MACs (its neck, CTC head
/// and their MatMuls re-fitted too) their errors fell little and line accuracy fell (rec_dev 96.91 → 95.97 %, session 27).
/// </summary>
internal static class ConsumerDiscovery
{
    private sealed record Candidate(Node Node, Node Original, WeightRef Weight, WeightRef OriginalWeight);

    public static (List<ConsumerUnit> Units, List<LayerReconstruction> Skipped) Find(
        OnnxModel original, OnnxModel pruned, IReadOnlyList<RefitLayer> layers, bool perPositionClassifier = true)
    {
        var requested = new Dictionary<Node, RefitLayer>();
        foreach (var layer in layers) requested[layer.Pruned] = layer;

        var byWeight = new Dictionary<Tensor, List<Candidate>>();
        var order = new List<List<Candidate>>();
        var kept = new Dictionary<Node, int[]>();
        foreach (var node in pruned.Graph.Nodes)
        {
            if (!node.IsStandard || node.OpType is not ("Conv" or "Gemm" or "MatMul" or "ConvTranspose")) continue;
            if (!requested.TryGetValue(node, out var layer)) continue;
            var on = layer.Original;
            if (layer.KeptOutputs is { } k) kept[node] = k;
            if (pruned.Graph.ResolveWeight(node.Input(1)) is not { } w) continue;
            if (original.Graph.ResolveWeight(on.Input(1)) is not { } ow) continue;
            if (!byWeight.TryGetValue(w.Tensor, out var list))
            {
                byWeight[w.Tensor] = list = [];
                order.Add(list);
            }
            list.Add(new Candidate(node, on, w, ow));
        }

        var units = new List<ConsumerUnit>();
        var skipped = new List<LayerReconstruction>();
        foreach (var group in order)
        {
            try
            {
                units.Add(Build(original.Graph, pruned.Graph, group, kept, perPositionClassifier));
            }
            catch (LayerSkippedException e)
            {
                var first = group[0];
                skipped.Add(new LayerReconstruction(string.Join(", ", group.Select(c => c.Node.Id)), first.Node.OpType,
                    0, 0, 0, double.NaN, double.NaN, 0, e.Message));
            }
        }
        return (units, skipped);
    }

    /// <summary>Input features of the weight (Conv: channels per group; Gemm: K; MatMul: rows), or -1 when not a plain layout.</summary>
    public static long InputDim(Node node, long[] dims) =>
        node.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul" && Rewriter.Layers.Weight(node, dims) is { } w ? w.InputsPerGroup : -1;

    public static long OutputDim(Node node, long[] dims) => Rewriter.Layers.Weight(node, dims)?.Outputs ?? dims[1];

    private static ConsumerUnit Build(Graph originalGraph, Graph graph, List<Candidate> candidates, IReadOnlyDictionary<Node, int[]> kept, bool perPosition)
    {
        var first = candidates[0];
        var nodes = candidates.Select(c => c.Node).ToList();
        var kind = first.Node.OpType switch { "Conv" => ConsumerKind.Conv, "Gemm" => ConsumerKind.Gemm, "ConvTranspose" => ConsumerKind.ConvTranspose, _ => ConsumerKind.MatMul };
        long[] dims = first.Weight.Tensor.Dims, originalDims = first.OriginalWeight.Tensor.Dims;

        var users = ConstantUsers(graph, first.Weight);
        var foreign = users.Where(u => !nodes.Any(n => n.Equals(u))).ToList();
        if (foreign.Count > 0) throw new LayerSkippedException($"its weight is also read by {foreign[0]}");
        if (!first.Weight.Tensor.IsFloating) throw new LayerSkippedException("its weight is not a floating-point tensor");
        foreach (var c in candidates)
        {
            if (Rewriter.Layers.Weight(c.Node, c.Weight.Tensor.Dims)?.OutputAxis != Rewriter.Layers.Weight(first.Node, dims)?.OutputAxis ||
                c.Node.GetInt("group", 1) != first.Node.GetInt("group", 1))
                throw new LayerSkippedException("nodes sharing its weight have different attributes");
            if (kind == ConsumerKind.Gemm && c.Node.GetInt("transA", 0) != 0) throw new LayerSkippedException("Gemm with transA=1 is not supported");
        }

        int groups = 1;
        long outputs = OutputDim(first.Node, dims), originalOutputs = OutputDim(first.Original, originalDims);
        // A depthwise conv (one input and one output channel per conv group) stays one when its channels are pruned.
        bool depthwise = kind == ConsumerKind.Conv && dims[1] == 1 && originalDims[1] == 1
            && first.Node.GetInt("group", 1) == outputs && first.Original.GetInt("group", 1) == originalOutputs;
        if (kind == ConsumerKind.Conv)
        {
            groups = (int)first.Node.GetInt("group", 1);
            if (first.Original.GetInt("group", 1) != groups && !depthwise)
                throw new LayerSkippedException($"group changed from {first.Original.GetInt("group", 1)} to {groups}");
        }
        int block = kind == ConsumerKind.ConvTranspose ? BlockOf(candidates, dims, originalDims) : 1;
        int[] keptOutputs = KeptOutputs(candidates, kept, outputs, originalOutputs);
        if (outputs % groups != 0) throw new LayerSkippedException($"{outputs} outputs do not split into {groups} groups");
        long perGroup = outputs / groups, originalPerGroup = originalOutputs / groups;
        for (int o = 0; o < keptOutputs.Length && !depthwise; o++)
            if (keptOutputs[o] / originalPerGroup != o / perGroup)
                throw new LayerSkippedException($"kept output {keptOutputs[o]} left its group");

        if (block > 1) keptOutputs = [.. keptOutputs.SelectMany(o => Enumerable.Range(o * block, block))];

        var pooled = candidates.Select(c => (PoolInput(graph, c.Node), PoolInput(originalGraph, c.Original))).ToList();
        bool isPooled = perPosition && kind is ConsumerKind.Gemm or ConsumerKind.MatMul && pooled.All(p => p.Item1 is not null && p.Item2 is not null);
        if (perPosition && !isPooled && pooled.Any(p => (p.Item1 is null) != (p.Item2 is null)))
            throw new LayerSkippedException("the pruned and original graphs differ around its input pooling");

        return new ConsumerUnit
        {
            Name = string.Join(", ", nodes.Select(n => n.Id)),
            Kind = kind,
            Nodes = nodes,
            OriginalNodes = candidates.Select(c => c.Original).ToList(),
            FeatureValues = isPooled ? pooled.Select(p => p.Item1!).ToList() : nodes.Select(n => n.Input(0)).ToList(),
            TargetValues = isPooled ? pooled.Select(p => p.Item2!).ToList() : candidates.Select(c => c.Original.Outputs[0]).ToList(),
            Pooled = isPooled,
            Weight = first.Weight,
            WeightDims = dims,
            Bias = FindBias(graph, candidates, kind, outputs),
            KeptOutputs = keptOutputs,
            Groups = groups,
            InputsPerGroup = (int)InputDim(first.Node, dims),
            Block = block,
        };
    }

    /// <summary>
    /// k² for a 2-D ConvTranspose with one group whose k×k kernel equals its stride, without padding, dilation, output
    /// padding or an output shape: each input pixel then writes its own k×k block (see <see cref="ConsumerUnit.Block"/>).
    /// Other ConvTransposes overlap or crop their blocks, and are not fitted.
    /// </summary>
    private static int BlockOf(List<Candidate> candidates, long[] dims, long[] originalDims)
    {
        if (dims.Length != 4 || dims[2] != dims[3] || !originalDims.Skip(2).SequenceEqual(dims.Skip(2)))
            throw new LayerSkippedException("only a 2-D ConvTranspose with a square kernel is fitted");
        long k = dims[2];
        foreach (var node in candidates.SelectMany(c => new[] { c.Node, c.Original }))
            if (!WritesOwnBlocks(node, k)) throw new LayerSkippedException("a ConvTranspose is fitted only with one group, stride = kernel, no padding, dilation or output shape");
        return checked((int)(k * k));
    }

    /// <summary>Whether a ConvTranspose with a k×k kernel has one group, stride k and no padding, dilation or output shape.</summary>
    internal static bool WritesOwnBlocks(Node node, long k) =>
        node.GetInt("group", 1) == 1
        && (node.GetInts("strides") ?? [1, 1]).All(s => s == k)
        && (node.GetInts("pads") ?? [0, 0, 0, 0]).All(p => p == 0)
        && (node.GetInts("dilations") ?? [1, 1]).All(d => d == 1)
        && (node.GetInts("output_padding") ?? [0, 0]).All(p => p == 0)
        && node.GetInts("output_shape") is null
        && (node.GetString("auto_pad") ?? "NOTSET") is "NOTSET" or "VALID";

    private static int[] KeptOutputs(List<Candidate> candidates, IReadOnlyDictionary<Node, int[]> kept, long outputs, long originalOutputs)
    {
        int[]? list = null;
        foreach (var c in candidates)
            if (kept.TryGetValue(c.Node, out var k))
            {
                if (list is not null && !list.SequenceEqual(k)) throw new LayerSkippedException("nodes sharing its weight keep different output channels");
                list = k;
            }
        if (list is null)
        {
            if (outputs != originalOutputs)
                throw new LayerSkippedException($"its outputs went from {originalOutputs} to {outputs} but no kept-channel list names it");
            return Enumerable.Range(0, (int)outputs).ToArray();
        }
        if (list.Length != outputs) throw new LayerSkippedException($"its kept-channel list has {list.Length} entries, the pruned weight {outputs} outputs");
        for (int i = 0; i < list.Length; i++)
            if (list[i] < 0 || list[i] >= originalOutputs || (i > 0 && list[i] <= list[i - 1]))
                throw new LayerSkippedException($"its kept-channel list is not increasing within [0, {originalOutputs}) at entry {i} ({list[i]})");
        return list;
    }

    /// <summary>Where the fitted bias goes; every node of the unit must read the same bias.</summary>
    private static BiasSlot FindBias(Graph graph, List<Candidate> candidates, ConsumerKind kind, long outputs)
    {
        var nodes = candidates.Select(c => c.Node).ToList();
        int newType = CastTarget(candidates[0].Weight) ?? candidates[0].Weight.Tensor.DataType;
        if (kind == ConsumerKind.MatMul)
        {
            if (nodes.Count != 1) return BiasSlot.None;
            var node = nodes[0];
            if (graph.IsGraphOutput(node.Outputs[0]) || graph.Consumers(node.Outputs[0]) is not [{ OpType: "Add" } add]) return BiasSlot.None;
            string other = add.Input(0) == node.Outputs[0] ? add.Input(1) : add.Input(0);
            if (graph.ResolveWeight(other) is not { } c || c.Tensor.ElementCount != outputs || !c.Tensor.IsFloating) return BiasSlot.None;
            var cUsers = ConstantUsers(graph, c);
            return cUsers.Count == 1 && cUsers[0].Equals(add) ? new BiasSlot(BiasKind.FollowingAdd, c) : BiasSlot.None;
        }
        string value = nodes[0].Input(2);
        if (nodes.Any(n => n.Input(2) != value)) throw new LayerSkippedException("nodes sharing its weight read different biases");
        if (value.Length == 0) return new BiasSlot(BiasKind.New, NewDataType: newType);
        if (graph.ResolveWeight(value) is not { } bias || !bias.Tensor.IsFloating) return BiasSlot.None;
        var users = ConstantUsers(graph, bias);
        bool exclusive = users.All(u => nodes.Any(n => n.Equals(u)));
        return exclusive && bias.Tensor.ElementCount == outputs
            ? new BiasSlot(BiasKind.Existing, bias)
            : new BiasSlot(BiasKind.New, NewDataType: CastTarget(bias) ?? bias.Tensor.DataType);
    }

    private static int? CastTarget(WeightRef w) =>
        w.PassThrough.FirstOrDefault(p => p.OpType == "Cast") is { } cast ? (int)cast.GetInt("to", DataType.Float) : null;

    /// <summary>The nodes that read a stored constant, looking through Identity and Cast.</summary>
    public static List<Node> ConstantUsers(Graph graph, WeightRef weight)
    {
        var users = new List<Node>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        stack.Push(weight.ConstantNode is { } c ? c.Outputs[0] : weight.Tensor.Name);
        while (stack.Count > 0)
        {
            string value = stack.Pop();
            if (!seen.Add(value)) continue;
            foreach (var consumer in graph.Consumers(value))
            {
                if (consumer.OpType is "Identity" or "Cast" && consumer.Inputs.Count == 1) stack.Push(consumer.Outputs[0]);
                else if (!users.Any(u => u.Equals(consumer))) users.Add(consumer);
            }
        }
        return users;
    }

    /// <summary>
    /// The input of a global average pool feeding <paramref name="node"/> directly or through a
    /// Flatten(axis 1)/Reshape/Squeeze: GlobalAveragePool, or ReduceMean over the two spatial axes.
    /// Shapes are checked later, at run time.
    /// </summary>
    public static string? PoolInput(Graph graph, Node node)
    {
        var p = graph.Producer(node.Input(0));
        if (p is { OpType: "Flatten" } && p.GetInt("axis", 1) != 1) return null;
        if (p is { OpType: "Flatten" or "Reshape" or "Squeeze" }) p = graph.Producer(p.Input(0));
        if (p is null || !p.IsStandard) return null;
        if (p.OpType == "GlobalAveragePool") return p.Input(0);
        if (p.OpType != "ReduceMean") return null;
        long[]? axes = p.GetInts("axes");
        if (axes is null && p.Input(1).Length > 0) axes = graph.Constant(p.Input(1))?.ToInt64s();
        if (axes is null) return null;
        var set = axes.Select(a => a < 0 ? a + 4 : a).Order().ToArray();
        return set.SequenceEqual([2L, 3L]) ? p.Input(0) : null;
    }
}
