using Microsoft.ML.OnnxRuntime;
using OnnxSlim.Runtime;
namespace OnnxSlim.Calibration;

/// <summary>The calibration inputs (every one batch-major, same leading size), handed out in batches of images.</summary>
internal sealed class CalibrationSet
{
    private readonly IReadOnlyList<NamedTensor> _inputs;

    public CalibrationSet(IReadOnlyList<NamedTensor> inputs)
    {
        if (inputs.Count == 0) throw new ArgumentException("calibration needs at least one input tensor");
        long images = -1;
        foreach (var t in inputs)
        {
            if (t.Shape.Length == 0 || t.Shape[0] < 1)
                throw new ArgumentException($"calibration input '{t.Name}' has shape {NamedTensor.FormatShape(t.Shape)}; expected [N, …] with N ≥ 1");
            if (images >= 0 && t.Shape[0] != images)
                throw new ArgumentException($"calibration input '{t.Name}' has {t.Shape[0]} samples, another input has {images}");
            // More values than the shape needs: the first samples of a larger set (NamedTensor.FirstRows), read by index.
            if (t.Data.Length < t.ElementCount)
                throw new ArgumentException($"calibration input '{t.Name}' holds {t.Data.Length} values, its shape {NamedTensor.FormatShape(t.Shape)} needs {t.ElementCount}");
            images = t.Shape[0];
        }
        _inputs = inputs;
        Images = checked((int)images);
    }

    public int Images { get; }
    public IReadOnlyList<NamedTensor> Inputs => _inputs;

    public IReadOnlyList<NamedTensor> Slice(int first, int count) => Slice(first, count, null);

    /// <summary>Samples [first, first + count) of the inputs named in <paramref name="names"/> (all when null).</summary>
    public IReadOnlyList<NamedTensor> Slice(int first, int count, IReadOnlyCollection<string>? names)
    {
        if (first < 0 || count < 1 || first + count > Images) throw new ArgumentException($"batch [{first}, {first + count}) is outside the {Images} samples");
        if (first == 0 && count == Images && names is null && _inputs.All(t => t.Data.Length == t.ElementCount)) return _inputs;
        var result = new List<NamedTensor>(_inputs.Count);
        foreach (var t in _inputs)
        {
            if (names is not null && !names.Contains(t.Name)) continue;
            long per = t.ElementCount / t.Shape[0];
            var data = Array.CreateInstance(t.Data.GetType().GetElementType()!, per * count);
            Array.Copy(t.Data, per * first, data, 0, per * count);
            long[] shape = [count, .. t.Shape[1..]];
            result.Add(t with { Shape = shape, Data = data });
        }
        return result;
    }

    /// <summary>Whether an input's values can be held as float32: float32 itself, or float16/bfloat16/float64 widened (see <see cref="CopyFloats"/>).</summary>
    public static bool Widens(NamedTensor t) => t.Data is float[] or Half[] or BFloat16[] or double[];

    /// <summary>
    /// Copies samples [first, first + count) of a floating input into <paramref name="destination"/> as float32: float16
    /// and bfloat16 widen exactly; float64 rounds (the passes hold every value in float32).
    /// </summary>
    public void CopyFloats(string name, int first, int count, Span<float> destination)
    {
        var t = _inputs.First(i => i.Name == name);
        long per = t.ElementCount / t.Shape[0];
        int start = checked((int)(per * first)), length = checked((int)(per * count));
        switch (t.Data)
        {
            case float[] f:
                f.AsSpan(start, length).CopyTo(destination);
                break;
            case Half[] h:
                for (int i = 0; i < length; i++) destination[i] = (float)h[start + i];
                break;
            case BFloat16[] b:
                for (int i = 0; i < length; i++) destination[i] = b[start + i].ToFloat();
                break;
            case double[] d:
                for (int i = 0; i < length; i++) destination[i] = (float)d[start + i];
                break;
            default:
                throw new ArgumentException($"calibration input '{name}' is {t.ElementType}, not a floating type");
        }
    }
}
