using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration;

/// <summary>
/// One model input's calibration samples along the first axis: an array in memory, or float values read from a file a
/// batch at a time (<see cref="SampleFile"/>). Either way a batch comes out as the input's element type.
/// </summary>
public sealed class SampleColumn
{
    private readonly Array? _values;
    private readonly SampleFile? _file;
    private readonly long _first; // the backing's sample where this column starts

    private SampleColumn(string name, TensorElementType type, long[] shape, Array? values, SampleFile? file, long first)
    {
        if (shape.Length == 0 || shape[0] < 1)
            throw new ArgumentException($"calibration input '{name}' has shape {NamedTensor.FormatShape(shape)}; expected [N, …] with N ≥ 1");
        Name = name;
        ElementType = type;
        Shape = shape;
        PerSample = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        _values = values;
        _file = file;
        _first = first;
    }

    public string Name { get; }
    public TensorElementType ElementType { get; }
    /// <summary>[samples, …].</summary>
    public long[] Shape { get; }
    public long Samples => Shape[0];
    public long PerSample { get; }
    /// <summary>Whether the samples are read from a file on demand rather than held in memory.</summary>
    public bool IsFileBacked => _file is not null;

    /// <summary>
    /// The samples of <paramref name="t"/>, sharing its array. Its data may hold more values than its shape needs (the
    /// first samples of a larger set, <see cref="NamedTensor.FirstRows"/>): those are read by index.
    /// </summary>
    public static SampleColumn InMemory(NamedTensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        var column = new SampleColumn(t.Name, t.ElementType, t.Shape.ToArray(), t.Data, null, 0);
        if (t.Data.Length < t.ElementCount)
            throw new ArgumentException($"calibration input '{t.Name}' holds {t.Data.Length} values, its shape {NamedTensor.FormatShape(t.Shape)} needs {t.ElementCount}");
        return column;
    }

    /// <summary>Float samples of shape <paramref name="shape"/> at the start of <paramref name="file"/>, fed as <paramref name="type"/>.</summary>
    internal static SampleColumn InFile(string name, TensorElementType type, long[] shape, SampleFile file)
    {
        if (!NamedTensor.IsFloating(type)) throw new ArgumentException($"a file holds float samples; input '{name}' is {type}");
        return new SampleColumn(name, type, shape, null, file, 0);
    }

    /// <summary>Samples [first, first + count), sharing this column's backing.</summary>
    public SampleColumn Range(long first, long count)
    {
        Check(first, count);
        return new SampleColumn(Name, ElementType, [count, .. Shape[1..]], _values, _file, _first + first);
    }

    /// <summary>Samples [first, first + count) as a tensor of the input's element type (the array itself when it is all of it).</summary>
    public NamedTensor Read(long first, long count)
    {
        Check(first, count);
        long[] shape = [count, .. Shape[1..]];
        long start = (_first + first) * PerSample, length = count * PerSample;
        if (_values is not null)
        {
            if (start == 0 && length == _values.Length) return new NamedTensor(Name, ElementType, shape, _values);
            var data = Array.CreateInstance(_values.GetType().GetElementType()!, length);
            Array.Copy(_values, start, data, 0, length);
            return new NamedTensor(Name, ElementType, shape, data);
        }
        var floats = new float[length];
        _file!.Read(start, floats);
        return new NamedTensor(Name, ElementType, shape, ElementType == TensorElementType.Float ? floats : NamedTensor.FromFloats(floats, ElementType));
    }

    /// <summary>
    /// Samples [first, first + count) of a floating input as float32: float16 and bfloat16 widen exactly; float64 rounds
    /// (the passes hold every value in float32).
    /// </summary>
    public void CopyFloats(long first, long count, Span<float> destination)
    {
        Check(first, count);
        long start = (_first + first) * PerSample;
        int length = checked((int)(count * PerSample));
        if (destination.Length < length) throw new ArgumentException($"destination holds {destination.Length} values, {count} samples of '{Name}' need {length}");
        destination = destination[..length];
        if (_file is not null) { _file.Read(start, destination); return; }
        int s = checked((int)start);
        switch (_values)
        {
            case float[] f:
                f.AsSpan(s, length).CopyTo(destination);
                break;
            case Half[] h:
                for (int i = 0; i < length; i++) destination[i] = (float)h[s + i];
                break;
            case BFloat16[] b:
                for (int i = 0; i < length; i++) destination[i] = b[s + i].ToFloat();
                break;
            case double[] d:
                for (int i = 0; i < length; i++) destination[i] = (float)d[s + i];
                break;
            default:
                throw new ArgumentException($"calibration input '{Name}' is {ElementType}, not a floating type");
        }
    }

    private void Check(long first, long count)
    {
        if (first < 0 || count < 1 || first + count > Samples)
            throw new ArgumentException($"samples [{first}, {first + count}) are outside the {Samples} of calibration input '{Name}'");
    }
}
