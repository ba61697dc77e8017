using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;

namespace OnnxSlim.Runtime;

/// <summary>
/// Runs models on ONNX Runtime with its profiler on (full graph optimisation, as deployed) and returns their
/// per-kernel times. Several models are run in turn, round by round, so that whatever else the machine does hits
/// each alike and their ratios hold even when their absolute times do not. Rounds repeat until both
/// <c>minRounds</c> rounds and <c>minMilliseconds</c> have passed (at most <c>maxRounds</c>).
/// </summary>
public static class KernelProfiler
{
    /// <summary>Profiles a model on seeded random inputs at the given input shapes (NAME=D1,D2,… overrides; batch 1 otherwise).</summary>
    public static KernelProfile Run(byte[] model, IReadOnlyList<string> shapeOverrides, Provider provider, int threads,
        int warmup = 2, int minRounds = 5, double minMilliseconds = 30, int maxRounds = 50) =>
        Run([(model, meta => InputGenerator.Generate(meta, InputShapes.Resolve(meta, shapeOverrides), seed: 0))], provider, threads, warmup, minRounds, minMilliseconds, maxRounds)[0];

    /// <summary>Profiles several models with given inputs, alternating run by run.</summary>
    public static IReadOnlyList<KernelProfile> RunAlternating(IReadOnlyList<(byte[] Model, IReadOnlyList<NamedTensor> Inputs)> models, Provider provider, int threads,
        int warmup = 1, int minRounds = 5, double minMilliseconds = 30, int maxRounds = 50) =>
        Run([.. models.Select(m => (m.Model, (Func<IReadOnlyDictionary<string, NodeMetadata>, IReadOnlyList<NamedTensor>>)(_ => m.Inputs)))],
            provider, threads, warmup, minRounds, minMilliseconds, maxRounds);

    private static IReadOnlyList<KernelProfile> Run(IReadOnlyList<(byte[] Model, Func<IReadOnlyDictionary<string, NodeMetadata>, IReadOnlyList<NamedTensor>> Inputs)> models,
        Provider provider, int threads, int warmup, int minRounds, double minMilliseconds, int maxRounds)
    {
        ArgumentNullException.ThrowIfNull(models);
        if (models.Count == 0) throw new ArgumentException("no model to profile", nameof(models));
        if (threads < 0) throw new ArgumentException($"threads must be 0 (all cores) or positive, got {threads}", nameof(threads));
        if (minRounds < 1 || maxRounds < minRounds) throw new ArgumentException($"need 1 ≤ minRounds ≤ maxRounds, got {minRounds} and {maxRounds}", nameof(minRounds));
        string folder = Directory.CreateTempSubdirectory("onnxslim-profile-").FullName;
        var runs = new List<Profiled>();
        try
        {
            for (int m = 0; m < models.Count; m++)
                runs.Add(new Profiled(SessionFactory.Create(models[m].Model, provider, threads, optimize: true, profilePrefix: Path.Combine(folder, $"m{m}")), models[m].Inputs, threads));
            foreach (var run in runs) for (int r = 0; r < warmup; r++) run.RunOnce();
            var clock = Stopwatch.StartNew();
            for (int r = 0; r < maxRounds && (r < minRounds || clock.Elapsed.TotalMilliseconds < minMilliseconds); r++)
                foreach (var run in runs) run.RunOnce();
            return [.. runs.Select(run => run.End(folder, warmup))];
        }
        finally
        {
            foreach (var run in runs) run.Dispose();
            try { Directory.Delete(folder, recursive: true); }
            catch (IOException) { /* a temp folder left behind is harmless */ }
        }
    }

    /// <summary>One profiled session with its inputs on the native side, and the CPU time of each run when one thread computes it.</summary>
    private sealed class Profiled : IDisposable
    {
        private readonly InferenceSession _session;
        private readonly RunOptions _runOptions = new();
        private readonly string[] _names, _outputs;
        private readonly List<OrtValue> _values;
        private readonly List<double>? _cpu;

        public Profiled(InferenceSession session, Func<IReadOnlyDictionary<string, NodeMetadata>, IReadOnlyList<NamedTensor>> inputsFor, int threads)
        {
            _session = session;
            var inputs = inputsFor(session.InputMetadata);
            _names = [.. inputs.Select(i => i.Name)];
            _values = [.. inputs.Select(ModelRunner.ToOrtValue)];
            _outputs = [.. session.OutputMetadata.Keys];
            // One intra-op thread computes on this thread: its CPU time per run is the run without other processes' turns.
            _cpu = threads == 1 && ThreadCpuTime.Milliseconds() is not null ? [] : null;
        }

        public void RunOnce()
        {
            double? start = _cpu is null ? null : ThreadCpuTime.Milliseconds();
            try { _session.Run(_runOptions, _names, _values, _outputs).Dispose(); }
            catch (OnnxRuntimeException e) { throw new RuntimeUnavailableException($"ONNX Runtime failed to run the model: {SessionFactory.FirstLine(e.Message)}", e); }
            if (_cpu is not null) _cpu.Add(ThreadCpuTime.Milliseconds()!.Value - start!.Value);
        }

        public KernelProfile End(string folder, int warmup)
        {
            string file = _session.EndProfiling();
            return KernelProfile.Parse(File.ReadAllText(Path.IsPathRooted(file) ? file : Path.Combine(folder, Path.GetFileName(file))), warmup, _cpu);
        }

        public void Dispose()
        {
            foreach (var v in _values) v.Dispose();
            _runOptions.Dispose();
            _session.Dispose();
        }
    }
}
