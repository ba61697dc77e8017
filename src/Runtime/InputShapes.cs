using Microsoft.ML.OnnxRuntime;

namespace OnnxSlim.Runtime;

/// <summary>Resolves each model input's concrete shape: user overrides first, then sensible defaults for dynamic dims.</summary>
public static class InputShapes
{
    public const int DefaultImageSize = 224;

    /// <summary>
    /// Most elements onnxslim feeds one input (2^27: 512 MiB of float32, an 8K RGB image fits): shapes come from
    /// the model or --shape, and a dim of 1e9 would otherwise overflow or take the machine's memory.
    /// </summary>
    public const long MaxInputElements = 1L << 27;

    /// <summary>Parses `NAME=D1,D2,...` (also `D1,D2,...` alone, meaning the first input).</summary>
    public static KeyValuePair<string, long[]> ParseOverride(string text)
    {
        int eq = text.LastIndexOf('=');
        string name = eq >= 0 ? text[..eq] : "";
        string dims = eq >= 0 ? text[(eq + 1)..] : text;
        var parts = dims.Split(',', 'x');
        var shape = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], out shape[i]) || shape[i] <= 0)
                throw new ArgumentException($"bad --shape '{text}': expected NAME=D1,D2,... with positive integers");
        return new(name, shape);
    }

    /// <summary>The shapes the user gave (`--shape`), by input name (a nameless one is the first input's); no defaults.</summary>
    public static Dictionary<string, long[]> Given(IReadOnlyDictionary<string, NodeMetadata> inputs, IEnumerable<string> overrides)
    {
        var given = new Dictionary<string, long[]>(StringComparer.Ordinal);
        string first = inputs.Keys.First();
        foreach (var text in overrides)
        {
            var (name, shape) = ParseOverride(text);
            if (name.Length == 0) name = first;
            if (!inputs.ContainsKey(name))
                throw new ArgumentException($"--shape names '{name}', which is not an input of the model (inputs: {string.Join(", ", inputs.Keys)})");
            given[name] = shape;
        }
        return given;
    }

    public static Dictionary<string, long[]> Resolve(IReadOnlyDictionary<string, NodeMetadata> inputs,
        IEnumerable<string> overrides, int batch = 1)
    {
        var given = Given(inputs, overrides);
        var result = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (name, meta) in inputs)
        {
            if (given.TryGetValue(name, out var shape))
            {
                if (shape.Length != meta.Dimensions.Length)
                    throw new ArgumentException($"--shape {name} has {shape.Length} dims, the model's input has {meta.Dimensions.Length}");
                result[name] = CheckSize(name, shape, "--shape");
                continue;
            }
            var dims = meta.Dimensions.Select(d => (long)d).ToArray();
            for (int i = 0; i < dims.Length; i++)
            {
                if (dims[i] == 0)
                    throw new ArgumentException($"input '{name}' declares dim {i} = 0 (an empty tensor); give its shape with --shape {name}=D1,D2,...");
                if (dims[i] > 0) continue;
                // Dynamic: batch first, image sides in the last two dims of 4-D inputs, else 1.
                dims[i] = i == 0 ? batch : dims.Length == 4 && i >= 2 ? DefaultImageSize : 1;
            }
            if (batch != 1 && dims.Length > 0 && meta.Dimensions[0] > 0 && meta.Dimensions[0] != batch)
                throw new ArgumentException($"input '{name}' has a fixed batch of {meta.Dimensions[0]}, cannot run batch {batch}");
            result[name] = CheckSize(name, dims, "the model");
        }
        return result;
    }

    /// <summary>The shape, when its element count is at most <see cref="MaxInputElements"/>.</summary>
    private static long[] CheckSize(string name, long[] shape, string from)
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d > MaxInputElements || (n = n * d) > MaxInputElements)
                throw new ArgumentException($"input '{name}' of shape [{string.Join(",", shape)}] (from {from}) has more than {MaxInputElements} elements, " +
                    "the most onnxslim feeds one input; give a smaller shape with --shape");
        }
        return shape;
    }
}
