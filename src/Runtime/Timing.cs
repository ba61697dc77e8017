using OnnxSlim.Runtime;

namespace OnnxSlim.Runtime;

/// <summary>
/// Models loaded once into ONNX Runtime and timed alternately on the same seeded inputs, at as many batch
/// sizes as asked (session creation costs as much as many runs on large models).
/// </summary>
public sealed class Timing(IReadOnlyList<byte[]> models, Provider provider, IReadOnlyList<string> shapes, int threads) : IDisposable
{
    private readonly List<ModelRunner> _runners = Load(models, provider, threads);

    public static LatencyResult[] Measure(IReadOnlyList<string> paths, Provider provider, IReadOnlyList<string> shapes,
        int batch, int runs, int warmup, int threads)
    {
        using var timing = new Timing(paths.Select(File.ReadAllBytes).ToList(), provider, shapes, threads);
        return timing.Measure(batch, runs, warmup);
    }

    /// <summary>Throws <see cref="ArgumentException"/> when a model has a fixed batch other than <paramref name="batch"/>.</summary>
    public LatencyResult[] Measure(int batch, int runs, int warmup)
    {
        var inputs = _runners.Select(r => (IReadOnlyList<NamedTensor>)InputGenerator.Generate(r.Inputs,
            InputShapes.Resolve(r.Inputs, shapes, batch), seed: 0)).ToList();
        return LatencyBenchmark.MeasureAlternating(_runners, inputs, runs, warmup);
    }

    private static List<ModelRunner> Load(IReadOnlyList<byte[]> models, Provider provider, int threads)
    {
        var runners = new List<ModelRunner>();
        try
        {
            foreach (var bytes in models) runners.Add(new ModelRunner(bytes, provider, threads));
            return runners;
        }
        catch
        {
            foreach (var r in runners) r.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var r in _runners) r.Dispose();
    }
}
