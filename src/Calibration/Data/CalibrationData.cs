using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// Calibration samples for every model input (the same number each), handed out a batch at a time. Inputs read from a
/// float .npy or from a folder of images stay in a file until a batch needs them (<see cref="SampleColumn"/>): peak
/// memory does not grow with the number of samples. Disposing closes the files this set owns; a <see cref="Range"/>
/// shares them and owns none.
/// </summary>
public sealed class CalibrationData : IDisposable
{
    private readonly SampleColumn[] _inputs;
    private readonly IReadOnlyList<IDisposable> _owned;
    private readonly Task? _check;

    /// <param name="owned">Files opened for these columns, closed with this set.</param>
    /// <param name="check">The check of the values still running beside the caller (see <see cref="WaitForCheck"/>), if any.</param>
    internal CalibrationData(IReadOnlyList<SampleColumn> inputs, IReadOnlyList<IDisposable>? owned = null, Task? check = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count == 0) throw new ArgumentException("calibration needs at least one input tensor");
        foreach (var t in inputs)
            if (t.Samples != inputs[0].Samples)
                throw new ArgumentException($"calibration input '{t.Name}' has {t.Samples} samples, input '{inputs[0].Name}' has {inputs[0].Samples}");
        _inputs = [.. inputs];
        _owned = owned ?? [];
        _check = check;
        Images = checked((int)_inputs[0].Samples);
    }

    /// <summary>Samples held in memory, sharing the tensors' arrays.</summary>
    public static CalibrationData FromTensors(IReadOnlyList<NamedTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        return new CalibrationData([.. tensors.Select(SampleColumn.InMemory)]);
    }

    public int Images { get; }
    public IReadOnlyList<SampleColumn> Inputs => _inputs;

    /// <summary>What the loader noticed but accepted (integer samples for a floating input, used unscaled); one line each.</summary>
    public IReadOnlyList<string> Warnings { get; internal set; } = [];

    /// <summary>Samples [first, first + count) of every input, sharing this set's storage.</summary>
    public CalibrationData Range(int first, int count)
    {
        CheckRange(first, count);
        return new CalibrationData([.. _inputs.Select(c => c.Range(first, count))], check: _check);
    }

    /// <summary>
    /// Waits for the check of the values that <see cref="CalibrationInputs.Load"/> may leave running beside the caller,
    /// rethrowing its refusal (an <see cref="ArgumentException"/> naming the bad sample). Every read waits for it first,
    /// so no bad value is ever used; a caller that must refuse bad data before some step calls it there.
    /// </summary>
    public void WaitForCheck() => _check?.GetAwaiter().GetResult();

    public IReadOnlyList<NamedTensor> Slice(int first, int count) => Slice(first, count, null);

    /// <summary>Samples [first, first + count) of the inputs named in <paramref name="names"/> (all when null), read into memory.</summary>
    public IReadOnlyList<NamedTensor> Slice(int first, int count, IReadOnlyCollection<string>? names)
    {
        CheckRange(first, count);
        WaitForCheck();
        return [.. _inputs.Where(c => names is null || names.Contains(c.Name)).Select(c => c.Read(first, count))];
    }

    /// <summary>Every sample of every input, in memory: for small sets (held-out samples, validation).</summary>
    public IReadOnlyList<NamedTensor> ToTensors() => Slice(0, Images);

    /// <summary>Whether an input's values can be read as float32 (<see cref="CopyFloats"/>).</summary>
    public static bool Widens(SampleColumn input) => NamedTensor.IsFloating(input.ElementType);

    /// <summary>Samples [first, first + count) of a floating input as float32 (see <see cref="SampleColumn.CopyFloats"/>).</summary>
    public void CopyFloats(string name, int first, int count, Span<float> destination)
    {
        var input = _inputs.FirstOrDefault(i => i.Name == name) ?? throw new ArgumentException($"no calibration input named '{name}'");
        WaitForCheck();
        input.CopyFloats(first, count, destination);
    }

    private void CheckRange(int first, int count)
    {
        if (first < 0 || count < 1 || first + count > Images) throw new ArgumentException($"batch [{first}, {first + count}) is outside the {Images} samples");
    }

    public void Dispose()
    {
        // The check reads the files closed here: it ends first (its refusal, if any, was or will not be wanted).
        if (_owned.Count > 0 && _check is { IsCompleted: false } check)
            try { check.Wait(); }
            catch (AggregateException) { }
        foreach (var o in _owned) o.Dispose();
    }
}
