using System.Collections;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// A set of channels that must be pruned together: the output channels of every node in
/// <see cref="Producers"/>, plus every tensor and parameter coupled to them (residual Adds, BatchNorms,
/// depthwise convs, SE gates, the inputs of the next layers). Channel j of the group is channel j of
/// every producer. A frozen group is kept whole; <see cref="Reasons"/> says why.
/// </summary>
public sealed class ChannelGroup
{
    internal ChannelGroup(int id, int width, IReadOnlyList<Node> producers, IReadOnlyList<Node> depthwise, IReadOnlyList<string> reasons, int blocks = 1)
    {
        if (blocks < 1 || width % blocks != 0) throw new ArgumentException($"group {id}: {width} channels do not split into {blocks} blocks", nameof(blocks));
        Id = id;
        Width = width;
        Producers = producers;
        DepthwiseProducers = depthwise;
        Reasons = reasons;
        Blocks = blocks;
    }

    public int Id { get; }
    public int Width { get; }

    /// <summary>
    /// The tie a grouped conv puts on these channels: they form <see cref="Blocks"/> equal contiguous ranges of
    /// <see cref="BlockWidth"/> channels (its conv groups), and a keep list must hold the same number of channels
    /// in every range, so that every conv group keeps the same width. 1 when unconstrained. Planning honours it by
    /// keeping multiples of <see cref="Blocks"/> and selecting within each range (<see cref="BlockOf"/>).
    /// </summary>
    public int Blocks { get; }

    public int BlockWidth => Width / Blocks;

    /// <summary>The block channel <paramref name="channel"/> lies in.</summary>
    public int BlockOf(int channel) => channel / BlockWidth;

    /// <summary>Whether <paramref name="keep"/> (sorted channel indices) holds the same count in every block.</summary>
    public bool KeepsEqualBlocks(IReadOnlyList<int> keep)
    {
        if (Blocks == 1) return true;
        if (keep.Count % Blocks != 0) return false;
        var counts = new int[Blocks];
        foreach (int c in keep) counts[BlockOf(c)]++;
        return counts.All(n => n == keep.Count / Blocks);
    }

    /// <summary>The first <paramref name="count"/> channels, taken equally from every block (a multiple of <see cref="Blocks"/>).</summary>
    public int[] FirstChannels(int count)
    {
        if (count < 0 || count > Width || count % Blocks != 0)
            throw new ArgumentException($"group {Id} has {Width} channels in {Blocks} blocks; cannot keep {count}", nameof(count));
        int perBlock = count / Blocks;
        return [.. Enumerable.Range(0, Blocks).SelectMany(b => Enumerable.Range(b * BlockWidth, perBlock))];
    }

    /// <summary>Conv/ConvTranspose/Gemm/MatMul nodes whose output channels are this group, in graph order, then the depthwise convs inside it.</summary>
    public IReadOnlyList<Node> Producers { get; }

    /// <summary>The depthwise convs among <see cref="Producers"/>: their input and output channels both are this group.</summary>
    public IReadOnlyList<Node> DepthwiseProducers { get; }

    public IReadOnlyList<string> Reasons { get; }
    public bool Frozen => Reasons.Count > 0;
    public bool Prunable => Reasons.Count == 0;
    public string? Reason => Reasons.Count > 0 ? Reasons[0] : null;

    /// <summary>Every place the rewriter edits for this group (weights, parameters, counts).</summary>
    public IReadOnlyList<SliceSite> Sites { get; internal set; } = [];

    /// <summary>Names of the tensors that carry some of this group's channels.</summary>
    public IReadOnlyList<string> Values { get; internal set; } = [];

    public override string ToString() =>
        $"group {Id}: {Width} channels" + (Blocks > 1 ? $" in {Blocks} conv groups" : "") + $", {Producers.Count} producers" + (Frozen ? $", frozen ({Reason})" : "");
}

/// <summary>The channel groups of a graph, with the layout of every tensor that carries channels.</summary>
public sealed class ChannelGroupSet : IReadOnlyList<ChannelGroup>
{
    private readonly IReadOnlyList<ChannelGroup> _groups;
    private readonly IReadOnlyDictionary<string, ChannelLayout> _layouts;

    internal ChannelGroupSet(Graph graph, IReadOnlyList<ChannelGroup> groups, IReadOnlyList<SliceSite> sites,
        IReadOnlyDictionary<string, ChannelLayout> layouts)
    {
        Graph = graph;
        _groups = groups;
        Sites = sites;
        _layouts = layouts;
    }

    public Graph Graph { get; }
    public IReadOnlyList<SliceSite> Sites { get; }
    public IReadOnlyDictionary<string, ChannelLayout> Layouts => _layouts;

    public ChannelLayout? LayoutOf(string value) => _layouts.GetValueOrDefault(value);

    /// <summary>The group with id <paramref name="id"/> (ids are 0..Count-1, in graph order of the first producer).</summary>
    public ChannelGroup this[int id] => _groups[id];
    public int Count => _groups.Count;
    public IEnumerator<ChannelGroup> GetEnumerator() => _groups.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public IEnumerable<ChannelGroup> Prunable => _groups.Where(g => g.Prunable);
    public IEnumerable<ChannelGroup> FrozenGroups => _groups.Where(g => g.Frozen);
}
