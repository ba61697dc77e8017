using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxSlim.Runtime;

/// <summary>Seeded synthetic inputs: standard normal floats (what normalised images look like), zeros elsewhere.</summary>
public static class InputGenerator
{
    public static List<NamedTensor> Generate(IReadOnlyDictionary<string, NodeMetadata> inputs,
        IReadOnlyDictionary<string, long[]> shapes, int seed)
    {
        var rng = new Random(seed);
        var result = new List<NamedTensor>();
        foreach (var (name, meta) in inputs)
        {
            long[] shape = shapes[name];
            long n = shape.Aggregate(1L, (a, b) => a * b);
            Array data = meta.ElementDataType switch
            {
                TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Double
                    => NamedTensor.FromFloats(Normal(rng, n), meta.ElementDataType),
                TensorElementType.Int64 => new long[n],
                TensorElementType.Int32 => new int[n],
                TensorElementType.UInt8 => Bytes(rng, n),
                TensorElementType.Bool => new bool[n],
                _ => throw new ArgumentException($"input '{name}' has element type {meta.ElementDataType}, which cannot be generated"),
            };
            result.Add(new NamedTensor(name, meta.ElementDataType, shape, data));
        }
        return result;
    }

    private static float[] Normal(Random rng, long n)
    {
        var data = new float[n];
        for (long i = 0; i < n; i += 2)
        {
            // Box-Muller gives two normals per draw.
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2 * Math.Log(u1));
            data[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < n) data[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
        return data;
    }

    private static byte[] Bytes(Random rng, long n)
    {
        var data = new byte[n];
        rng.NextBytes(data);
        return data;
    }
}
