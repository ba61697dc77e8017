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

    /// <param name="owned">Files opened for these columns, closed with this set.</param>
    internal CalibrationData(IReadOnlyList<SampleColumn> inputs, IReadOnlyList<IDisposable>? owned = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count == 0) throw new ArgumentException("calibration needs at least one input tensor");
        foreach (var t in inputs)
            if (t.Samples != inputs[0].Samples)
                throw new ArgumentException($"calibration input '{t.Name}' has {t.Samples} samples, input '{inputs[0].Name}' has {inputs[0].Samples}");
        _inputs = [.. inputs];
        _owned = owned ?? [];
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

    /// <summary>Samples [first, first + count) of every input, sharing this set's storage.</summary>
    public CalibrationData Range(int first, int count)
    {
        CheckRange(first, count);
        return new CalibrationData([.. _inputs.Select(c => c.Range(first, count))]);
    }

    public IReadOnlyList<NamedTensor> Slice(int first, int count) => Slice(first, count, null);

    /// <summary>Samples [first, first + count) of the inputs named in <paramref name="names"/> (all when null), read into memory.</summary>
    public IReadOnlyList<NamedTensor> Slice(int first, int count, IReadOnlyCollection<string>? names)
    {
        CheckRange(first, count);
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
        input.CopyFloats(first, count, destination);
    }

    private void CheckRange(int first, int count)
    {
        if (first < 0 || count < 1 || first + count > Images) throw new ArgumentException($"batch [{first}, {first + count}) is outside the {Images} samples");
    }

    public void Dispose()
    {
        foreach (var o in _owned) o.Dispose();
    }
}
