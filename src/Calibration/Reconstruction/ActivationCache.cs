namespace OnnxSlim.Calibration;

/// <summary>
/// Activations of one model over the whole calibration set, kept between passes so a later pass can
/// start from them instead of from the model's inputs. They live in one temporary file (<see cref="SpillFile"/>),
/// so memory stays one batch whatever the number of samples; recently written values are read back from the
/// OS page cache. Valid by construction: the pruned model's
/// values computed for a level depend only on layers already re-fitted, which never change again.
/// After each level the entries no remaining pass can start from are dropped (<see cref="Retain"/>),
/// and the oldest go first when the byte budget (disk) is reached; a dropped value is simply
/// recomputed further back.
/// </summary>
/// <remarks>
/// The file is cut into chunks of <see cref="ChunkValues"/> values; a value takes as many as it needs, wherever they
/// are, and a dropped value's chunks go to the next ones. Why one file reused rather than a file per value: every pass
/// writes the values it computes and the next one reads them back, and each new file's bytes went into fresh
/// page-cache pages that were freed again when it was dropped (PP-OCRv4 rec: ~2.4 of the reconstruction's ~16 CPU s
/// in the kernel, most of it copying into pages first touched); rewriting pages the file already holds costs a copy.
/// </remarks>
internal sealed class ActivationCache(int images, long budgetBytes) : IDisposable
{
    /// <summary>Values in a chunk of the file (1 MiB).</summary>
    internal const int ChunkValues = 1 << 18;

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    // Chunks of the file no value holds, lowest first so the file stays as short as the values held need.
    private readonly SortedSet<int> _free = [];
    private SpillFile? _file;
    private int _chunks;
    private long _bytes;

    /// <summary>A value's per-sample shape and size, and the chunks that hold its images × per-sample values in order.</summary>
    private sealed class Entry(int[] chunks, long[] sampleShape, long perSample)
    {
        public int[] Chunks { get; } = chunks;
        public long[] SampleShape { get; } = sampleShape;
        public long PerSample { get; } = perSample;
        public long Bytes => PerSample * sizeof(float);
        public bool Complete { get; set; }
    }

    /// <summary>Per-sample shapes (leading dim 1) of the values a pass can read.</summary>
    public IReadOnlyDictionary<string, long[]> Available =>
        _entries.Where(e => e.Value.Complete).ToDictionary(e => e.Key, e => e.Value.SampleShape, StringComparer.Ordinal);

    public bool Contains(string value) => _entries.TryGetValue(value, out var e) && e.Complete;

    /// <summary>Chunks the file has (held or free): its length in <see cref="ChunkValues"/>.</summary>
    internal int FileChunks => _chunks;

    /// <summary>
    /// Makes room for a value the coming pass computes, never evicting <paramref name="pinned"/> (what that pass
    /// reads); false when it cannot fit even after evicting everything else older.
    /// </summary>
    public bool Reserve(string value, long[] sampleShape, IReadOnlySet<string> pinned)
    {
        if (_entries.ContainsKey(value)) return false;
        long perSample = sampleShape.Aggregate(1L, (a, b) => a * b);
        long size = perSample * images * sizeof(float);
        if (size > budgetBytes) return false;
        while (_bytes + size > budgetBytes && _order.Count > 0)
        {
            // Evict the oldest complete entry; pending ones belong to the running pass.
            int i = _order.FindIndex(v => _entries[v].Complete && !pinned.Contains(v));
            if (i < 0) return false;
            Drop(_order[i]);
        }
        _file ??= new SpillFile("activation", "the pruned model's cached activations");
        var chunks = new int[checked((int)((perSample * images + ChunkValues - 1) / ChunkValues))];
        for (int c = 0; c < chunks.Length; c++)
        {
            if (_free.Count > 0)
            {
                chunks[c] = _free.Min;
                _free.Remove(chunks[c]);
            }
            else chunks[c] = _chunks++;
        }
        _entries[value] = new Entry(chunks, [1, .. sampleShape[1..]], perSample);
        _order.Add(value);
        _bytes += size;
        return true;
    }

    /// <summary>Stores one batch of a reserved value (images [firstImage, firstImage + batch.Length / per-sample size)).</summary>
    public void Store(string value, int firstImage, ReadOnlySpan<float> batch)
    {
        var e = _entries[value];
        for (long at = firstImage * e.PerSample; !batch.IsEmpty;)
        {
            int piece = Piece(at, batch.Length);
            _file!.Write(FileOffset(e, at), batch[..piece]);
            batch = batch[piece..];
            at += piece;
        }
    }

    /// <summary>Reads images [firstImage, firstImage + count) of a complete value into <paramref name="destination"/>.</summary>
    public void Read(string value, int firstImage, int count, Span<float> destination)
    {
        var e = _entries[value];
        if (!e.Complete) throw new InvalidOperationException($"'{value}' is still being written");
        var rest = destination[..checked((int)(count * e.PerSample))];
        for (long at = firstImage * e.PerSample; !rest.IsEmpty;)
        {
            int piece = Piece(at, rest.Length);
            _file!.Read(FileOffset(e, at), rest[..piece]);
            rest = rest[piece..];
            at += piece;
        }
    }

    /// <summary>Values from a value's element <paramref name="at"/> to the end of its chunk, at most <paramref name="wanted"/>.</summary>
    private static int Piece(long at, int wanted) => Math.Min(wanted, ChunkValues - (int)(at % ChunkValues));

    /// <summary>Where a value's element <paramref name="at"/> lies in the file (in values).</summary>
    private static long FileOffset(Entry e, long at) => (long)e.Chunks[at / ChunkValues] * ChunkValues + at % ChunkValues;

    /// <summary>Every value held, complete or not.</summary>
    public IReadOnlySet<string> Keys => _entries.Keys.ToHashSet(StringComparer.Ordinal);

    /// <summary>Drops every entry not in <paramref name="keep"/> (values no remaining pass can start from).</summary>
    public void Retain(IReadOnlySet<string> keep)
    {
        foreach (var value in _order.Where(v => !keep.Contains(v)).ToList()) Drop(value);
    }

    /// <summary>Ends a pass: what it stored becomes readable.</summary>
    public void Commit()
    {
        foreach (var e in _entries.Values) e.Complete = true;
    }

    private void Drop(string value)
    {
        var e = _entries[value];
        _bytes -= e.Bytes * images;
        _free.UnionWith(e.Chunks);
        _entries.Remove(value);
        _order.Remove(value);
    }

    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
        _entries.Clear();
        _order.Clear();
        _free.Clear();
        _chunks = 0;
        _bytes = 0;
    }
}
