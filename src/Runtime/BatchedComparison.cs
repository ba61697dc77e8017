namespace OnnxSlim.Runtime;

/// <summary>
/// <see cref="OutputComparison.Compare"/> of a whole reference with a candidate's outputs that arrive a batch at a time
/// (<see cref="ModelRunner.ForEachBatch"/>), without stacking them: the same figures as on the stacked outputs.
/// </summary>
public sealed class BatchedComparison
{
    private readonly IReadOnlyList<NamedTensor> _reference;
    private readonly long _samples;
    private readonly bool _top1;
    private readonly IReadOnlyDictionary<string, long>? _classAxes;
    private readonly OutputSums?[] _sums;
    private readonly float[]?[] _referenceValues;
    private readonly string?[] _notCompared;
    private long[]?[]? _sampleShapes;
    private Type?[]? _types;
    private bool _finite = true;
    private long _next;

    /// <param name="samples">Samples in the reference (the candidate's outputs for them come in order).</param>
    public BatchedComparison(IReadOnlyList<NamedTensor> reference, long samples, bool top1 = true, IReadOnlyDictionary<string, long>? classAxes = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (samples < 1) throw new ArgumentException($"samples must be at least 1, got {samples}", nameof(samples));
        (_reference, _samples, _top1, _classAxes) = (reference, samples, top1, classAxes);
        _sums = new OutputSums?[reference.Count];
        _referenceValues = new float[]?[reference.Count];
        _notCompared = new string?[reference.Count];
    }

    /// <summary>
    /// Adds the candidate's outputs for samples [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>),
    /// which follow the last batch added. False when an output is not batch-major (its first axis is not the batch, or its
    /// other axes or type change between batches): compare the whole outputs instead.
    /// </summary>
    public bool Add(long first, long count, IReadOnlyList<NamedTensor> batch)
    {
        if (first != _next || count < 1 || first + count > _samples)
            throw new ArgumentException($"batch [{first}, {first + count}) does not follow [0, {_next}) within {_samples} samples");
        if (_sampleShapes is null && !Start(count, batch)) return false;
        for (int i = 0; i < _reference.Count; i++)
        {
            if (_sampleShapes![i] is not { } sampleShape) continue;
            var c = batch.FirstOrDefault(o => o.Name == _reference[i].Name);
            if (c is null || c.Shape.Length == 0 || c.Shape[0] != count || !c.Shape.AsSpan(1).SequenceEqual(sampleShape) || c.Data.GetType() != _types![i]) return false;
            var cv = c.AsFloats();
            _finite &= OutputSums.AllFinite(cv);
            if (_sums[i] is { } sums)
            {
                int perSample = cv.Length / (int)count;
                sums.Add(_referenceValues[i].AsSpan(checked((int)(first * perSample)), cv.Length), cv);
            }
        }
        _next = first + count;
        return true;
    }

    /// <summary>Which outputs are compared, read from the first batch.</summary>
    private bool Start(long count, IReadOnlyList<NamedTensor> batch)
    {
        var sampleShapes = new long[]?[_reference.Count];
        var types = new Type?[_reference.Count];
        for (int i = 0; i < _reference.Count; i++)
        {
            var r = _reference[i];
            var c = batch.FirstOrDefault(o => o.Name == r.Name);
            if (c is not null)
            {
                if (c.Shape.Length == 0 || c.Shape[0] != count) return false;
                sampleShapes[i] = c.Shape[1..];
                types[i] = c.Data.GetType();
            }
            // The stacked candidate's shape is the whole set's.
            _notCompared[i] = OutputComparison.WhyNotCompared(r, c is null ? null : [_samples, .. c.Shape[1..]]);
            if (_notCompared[i] is not null) continue;
            _referenceValues[i] = r.AsFloats();
            _sums[i] = OutputComparison.SumsFor(r, _referenceValues[i]!, _top1, _classAxes);
        }
        (_sampleShapes, _types) = (sampleShapes, types);
        return true;
    }

    /// <summary>The figures, once every sample's outputs were added.</summary>
    public OutputComparison Result()
    {
        if (_next != _samples) throw new InvalidOperationException($"outputs for {_next} of {_samples} samples were added");
        return OutputComparison.From([.. _sums.OfType<OutputSums>()], _finite, [.. _notCompared.OfType<string>()]);
    }
}
