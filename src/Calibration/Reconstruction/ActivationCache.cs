namespace OnnxSlim.Calibration;

/// <summary>
/// Activations of one model over the whole calibration set, kept between passes so a later pass can
/// start from them instead of from the model's inputs. Each value lives in its own temporary file
/// (<see cref="SpillFile"/>), so memory stays one batch whatever the number of samples; recently
/// written values are read back from the OS page cache. Valid by construction: the pruned model's
/// values computed for a level depend only on layers already re-fitted, which never change again.
/// After each level the entries no remaining pass can start from are dropped (<see cref="Retain"/>),
/// and the oldest go first when the byte budget (disk) is reached; a dropped value is simply
/// recomputed further back.
/// </summary>
internal sealed class ActivationCache(int images, long budgetBytes) : IDisposable
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private long _bytes;

    private sealed class Entry(SpillFile file, long[] sampleShape, long perSample)
    {
        public SpillFile File { get; } = file;
        public long[] SampleShape { get; } = sampleShape;
        public long PerSample { get; } = perSample;
        public long Bytes => PerSample * sizeof(float);
        public bool Complete { get; set; }
    }

    /// <summary>Per-sample shapes (leading dim 1) of the values a pass can read.</summary>
    public IReadOnlyDictionary<string, long[]> Available =>
        _entries.Where(e => e.Value.Complete).ToDictionary(e => e.Key, e => e.Value.SampleShape, StringComparer.Ordinal);

    public bool Contains(string value) => _entries.TryGetValue(value, out var e) && e.Complete;

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
        _entries[value] = new Entry(new SpillFile("activation"), [1, .. sampleShape[1..]], perSample);
        _order.Add(value);
        _bytes += size;
        return true;
    }

    /// <summary>Stores one batch of a reserved value (images [firstImage, firstImage + batch.Length / per-sample size)).</summary>
    public void Store(string value, int firstImage, ReadOnlySpan<float> batch)
    {
        var e = _entries[value];
        e.File.Write(firstImage * e.PerSample, batch);
    }

    /// <summary>Reads images [firstImage, firstImage + count) of a complete value into <paramref name="destination"/>.</summary>
    public void Read(string value, int firstImage, int count, Span<float> destination)
    {
        var e = _entries[value];
        if (!e.Complete) throw new InvalidOperationException($"'{value}' is still being written");
        e.File.Read(firstImage * e.PerSample, destination[..checked((int)(count * e.PerSample))]);
    }

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
        e.File.Dispose();
        _entries.Remove(value);
        _order.Remove(value);
    }

    public void Dispose()
    {
        foreach (var e in _entries.Values) e.File.Dispose();
        _entries.Clear();
        _order.Clear();
        _bytes = 0;
    }
}
