using OnnxSlim.Runtime;
namespace OnnxSlim.Calibration;

/// <summary>
/// Activations of one model over the whole calibration set, kept between passes so a later pass can
/// start from them instead of from the model's inputs. Valid by construction: the pruned model's
/// values computed for a level depend only on layers already re-fitted, which never change again, and
/// the original model never changes. After each level the entries no remaining pass can start from are
/// dropped (<see cref="Retain"/>), and the oldest go first when the byte budget is reached; a dropped
/// value is simply recomputed further back.
/// </summary>
internal sealed class ActivationCache(int images, long budgetBytes)
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private long _bytes;

    private sealed record Entry(float[] Data, long[] SampleShape, long PerSample)
    {
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
        if (size > budgetBytes || perSample * images > Array.MaxLength) return false;
        while (_bytes + size > budgetBytes && _order.Count > 0)
        {
            // Evict the oldest complete entry; pending ones belong to the running pass.
            int i = _order.FindIndex(v => _entries[v].Complete && !pinned.Contains(v));
            if (i < 0) return false;
            _bytes -= _entries[_order[i]].Data.LongLength * sizeof(float);
            _entries.Remove(_order[i]);
            _order.RemoveAt(i);
        }
        _entries[value] = new Entry(new float[perSample * images], [1, .. sampleShape[1..]], perSample);
        _order.Add(value);
        _bytes += size;
        return true;
    }

    /// <summary>Stores one batch of a reserved value.</summary>
    public void Store(string value, int firstImage, float[] batch)
    {
        var e = _entries[value];
        Array.Copy(batch, 0, e.Data, firstImage * e.PerSample, batch.LongLength);
    }

    /// <summary>Every value held, complete or not.</summary>
    public IReadOnlySet<string> Keys => _entries.Keys.ToHashSet(StringComparer.Ordinal);

    /// <summary>Drops every entry not in <paramref name="keep"/> (values no remaining pass can start from).</summary>
    public void Retain(IReadOnlySet<string> keep)
    {
        foreach (var value in _order.Where(v => !keep.Contains(v)).ToList())
        {
            _bytes -= _entries[value].Data.LongLength * sizeof(float);
            _entries.Remove(value);
            _order.Remove(value);
        }
    }

    /// <summary>Ends a pass: what it stored becomes readable.</summary>
    public void Commit()
    {
        foreach (var e in _entries.Values) e.Complete = true;
    }

    /// <summary>One batch of a cached value, shaped [count, …]; the stored array itself when the batch is every sample (read it, never write it).</summary>
    public NamedTensor Slice(string value, int firstImage, int count)
    {
        var e = _entries[value];
        if (firstImage == 0 && count == images)
            return new NamedTensor(value, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [count, .. e.SampleShape[1..]], e.Data);
        var data = new float[e.PerSample * count];
        Array.Copy(e.Data, firstImage * e.PerSample, data, 0, data.LongLength);
        return new NamedTensor(value, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [count, .. e.SampleShape[1..]], data);
    }
}
