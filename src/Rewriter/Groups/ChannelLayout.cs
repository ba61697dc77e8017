using System.Collections.Immutable;

namespace OnnxSlim.Rewriter;

/// <summary>
/// Channels [Start, Start + Length) of one channel group, laid side by side along a tensor's channel axis.
/// Each channel owns <see cref="Inner"/> consecutive elements of that axis: 1 for an NCHW activation, H·W
/// after a C×H×W flatten, 0 while not known yet (a flatten of unknown spatial size, resolved at its Gemm).
/// </summary>
public readonly record struct ChannelSegment(int Group, int Start, int Length, long Inner)
{
    public int End => Start + Length;
}

/// <summary>
/// How a tensor's channel axis is made of channel groups: one segment for a conv output, several after a
/// Concat (DenseNet, GoogLeNet), sub-ranges after a Split. Immutable; rules build new layouts.
/// </summary>
public sealed class ChannelLayout : IEquatable<ChannelLayout>
{
    public ChannelLayout(int rank, int axis, ImmutableArray<ChannelSegment> segments)
    {
        if (axis < 0 || axis >= rank) throw new ArgumentException($"channel axis {axis} is outside rank {rank}", nameof(axis));
        if (segments.IsDefaultOrEmpty) throw new ArgumentException("a channel layout needs at least one segment", nameof(segments));
        Rank = rank;
        Axis = axis;
        Segments = segments;
    }

    public static ChannelLayout Single(int rank, int axis, int group, int width) => new(rank, axis, [new ChannelSegment(group, 0, width, 1)]);

    public int Rank { get; }
    public int Axis { get; }
    public ImmutableArray<ChannelSegment> Segments { get; }

    public int Channels
    {
        get
        {
            int n = 0;
            foreach (var s in Segments) n += s.Length;
            return n;
        }
    }

    public bool InnerKnown => Segments.All(s => s.Inner > 0);

    /// <summary>Elements along the channel axis (channels × inner); only meaningful when <see cref="InnerKnown"/>.</summary>
    public long Extent => Segments.Sum(s => s.Length * s.Inner);

    public bool IsPlain => Segments.All(s => s.Inner == 1);

    public IEnumerable<int> Groups => Segments.Select(s => s.Group).Distinct();

    public ChannelLayout WithAxis(int rank, int axis) => rank == Rank && axis == Axis ? this : new(rank, axis, Segments);

    public ChannelLayout WithSegments(IEnumerable<ChannelSegment> segments) => new(Rank, Axis, [.. segments]);

    /// <summary>The layout after merging following axes of <paramref name="factor"/> elements into the channel axis.</summary>
    public ChannelLayout TimesInner(long factor, int rank, int axis) =>
        new(rank, axis, [.. Segments.Select(s => s with { Inner = factor == 0 || s.Inner == 0 ? 0 : s.Inner * factor })]);

    /// <summary>Channels [from, to) of this layout (channel units), cutting segments where needed.</summary>
    public ChannelLayout Cut(int from, int to)
    {
        if (from < 0 || to > Channels || from >= to) throw new ArgumentException($"channel range [{from},{to}) is empty or outside 0..{Channels}");
        var result = ImmutableArray.CreateBuilder<ChannelSegment>();
        int offset = 0;
        foreach (var s in Segments)
        {
            int lo = Math.Max(from, offset), hi = Math.Min(to, offset + s.Length);
            if (lo < hi) result.Add(s with { Start = s.Start + lo - offset, Length = hi - lo });
            offset += s.Length;
        }
        return new ChannelLayout(Rank, Axis, result.ToImmutable());
    }

    public static ChannelLayout Concat(int rank, int axis, IEnumerable<ChannelLayout> parts) =>
        new(rank, axis, [.. parts.SelectMany(p => p.Segments)]);

    /// <summary>Position of channel <paramref name="channel"/> of <paramref name="group"/> along the axis (channel units), or -1.</summary>
    public int PositionOf(int group, int channel)
    {
        int offset = 0;
        foreach (var s in Segments)
        {
            if (s.Group == group && channel >= s.Start && channel < s.End) return offset + channel - s.Start;
            offset += s.Length;
        }
        return -1;
    }

    /// <summary>Every position of channel <paramref name="channel"/> of <paramref name="group"/> along the axis (a group may appear several times: SPPF's concat).</summary>
    public IEnumerable<int> PositionsOf(int group, int channel)
    {
        int offset = 0;
        foreach (var s in Segments)
        {
            if (s.Group == group && channel >= s.Start && channel < s.End) yield return offset + channel - s.Start;
            offset += s.Length;
        }
    }

    /// <summary>Whether <paramref name="group"/> appears in more than one segment.</summary>
    public bool Repeats(int group) => Segments.Count(s => s.Group == group) > 1;

    /// <summary>The inner size of the segment at channel position <paramref name="position"/>, and the element offset where that channel starts.</summary>
    public (long ElementOffset, long Inner) ElementsOf(int position)
    {
        long element = 0;
        int offset = 0;
        foreach (var s in Segments)
        {
            if (position < offset + s.Length) return (element + (position - offset) * s.Inner, s.Inner);
            element += s.Length * s.Inner;
            offset += s.Length;
        }
        throw new ArgumentException($"channel position {position} is outside 0..{Channels}");
    }

    public ChannelLayout MapGroups(Func<int, int> map) => new(Rank, Axis, [.. Segments.Select(s => s with { Group = map(s.Group) })]);

    public bool Equals(ChannelLayout? other) =>
        other is not null && Rank == other.Rank && Axis == other.Axis && Segments.SequenceEqual(other.Segments);

    public override bool Equals(object? obj) => Equals(obj as ChannelLayout);

    public override int GetHashCode() => HashCode.Combine(Rank, Axis, Segments.Length);

    public override string ToString() =>
        $"rank {Rank} axis {Axis} [" + string.Join(" | ", Segments.Select(s => $"g{s.Group}[{s.Start}..{s.End})" + (s.Inner == 1 ? "" : $"×{s.Inner}"))) + "]";
}
