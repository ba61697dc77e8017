using OnnxSlim.Runtime;

namespace OnnxSlim.Cli;

/// <summary>Loads models into ONNX Runtime and times them alternately on the same seeded inputs.</summary>
public static class Timing
{
    public static LatencyResult[] Measure(IReadOnlyList<string> paths, Provider provider, IReadOnlyList<string> shapes,
        int batch, int runs, int warmup, int threads) =>
        Measure(paths.Select(File.ReadAllBytes).ToList(), provider, shapes, batch, runs, warmup, threads);

    public static LatencyResult[] Measure(IReadOnlyList<byte[]> models, Provider provider, IReadOnlyList<string> shapes,
        int batch, int runs, int warmup, int threads)
    {
        var runners = new List<ModelRunner>();
        try
        {
            foreach (var bytes in models) runners.Add(new ModelRunner(bytes, provider, threads));
            var inputs = runners.Select(r => (IReadOnlyList<NamedTensor>)InputGenerator.Generate(r.Inputs,
                InputShapes.Resolve(r.Inputs, shapes, batch), seed: 0)).ToList();
            return LatencyBenchmark.MeasureAlternating(runners, inputs, runs, warmup);
        }
        finally
        {
            foreach (var r in runners) r.Dispose();
        }
    }
}
