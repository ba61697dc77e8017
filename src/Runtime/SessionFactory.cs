using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;

namespace OnnxSlim.Runtime;

/// <summary>Creates ONNX Runtime sessions with the options onnxslim always uses.</summary>
public static partial class SessionFactory
{
    static SessionFactory()
    {
        // The provider bridge logs a failed CUDA load to stderr in colour before throwing; our message says it in one line.
        OrtEnv.Instance().EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
    }

    /// <param name="spinning">
    /// Whether idle intra-op threads spin between parallel sections (ORT's default): lowest latency for timing, but
    /// on a busy machine, and between the short kernels of many small runs, the spinning is CPU time taken from
    /// other work. One-shot and calibration runs pass false.
    /// </param>
    /// <param name="profilePrefix">When set, ONNX Runtime's profiler writes per-kernel times to PREFIX_….json (see <see cref="KernelProfiler"/>).</param>
    /// <param name="prepack">
    /// Whether ONNX Runtime copies weights into the layouts its kernels read when the session is made (its default): worth it
    /// over many runs, a copy of every such weight held beside the original for one or two.
    /// </param>
    public static InferenceSession Create(byte[] model, Provider provider, int intraOpThreads = 0, bool optimize = true, bool spinning = true,
        string? profilePrefix = null, bool prepack = true)
    {
        var options = CreateOptions(provider, intraOpThreads, optimize);
        if (!spinning) options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        if (!prepack) options.AddSessionConfigEntry("session.disable_prepacking", "1");
        if (profilePrefix is not null)
        {
            // The prefix first: setting EnableProfiling hands ORT the prefix it holds at that moment.
            options.ProfileOutputPathPrefix = profilePrefix;
            options.EnableProfiling = true;
        }
        try
        {
            return new InferenceSession(model, options);
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            throw new RuntimeUnavailableException($"ONNX Runtime rejected the model: {FirstLine(e.Message)}", e);
        }
    }

    public static InferenceSession Create(string path, Provider provider, int intraOpThreads = 0) =>
        Create(File.ReadAllBytes(path), provider, intraOpThreads);

    /// <summary>The ONNX Runtime library's version (e.g. 1.31.0).</summary>
    public static string RuntimeVersion => OrtEnv.Instance().GetVersionString();

    /// <summary>Throws <see cref="RuntimeUnavailableException"/> naming what is missing when the provider cannot run here.</summary>
    public static void EnsureAvailable(Provider provider)
    {
        using var options = CreateOptions(provider, intraOpThreads: 1, optimize: false);
    }

    private static SessionOptions CreateOptions(Provider provider, int intraOpThreads, bool optimize)
    {
        var options = new SessionOptions
        {
            // Probes run once: graph optimisation would cost more than it saves.
            GraphOptimizationLevel = optimize ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_ENABLE_BASIC,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
        };
        if (intraOpThreads > 0) options.IntraOpNumThreads = intraOpThreads;
        if (provider == Provider.Cuda)
        {
            try
            {
                options.AppendExecutionProvider_CUDA(0);
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                options.Dispose();
                throw new RuntimeUnavailableException($"the CUDA provider cannot run here: {WhyCudaFailed(e)}", e);
            }
        }
        return options;
    }

    /// <summary>The missing piece, in a few words, from ONNX Runtime's report of a failed CUDA provider load.</summary>
    internal static string WhyCudaFailed(Exception e)
    {
        string? library = CudaProviderLibrary();
        if (e is EntryPointNotFoundException || library is null || !OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider"))
            return "this build of onnxslim carries the CPU-only ONNX Runtime (build with -p:OrtFlavour=gpu, or install onnxslim-gpu)";
        // ORT's exception says only "Failed to load shared library"; the loader's own error names the missing dependency.
        string reason = e.Message;
        try { NativeLibrary.Free(NativeLibrary.Load(library)); }
        catch (DllNotFoundException load) { reason = load.Message; }
        var missing = MissingLibrary().Match(reason);
        return missing.Success
            ? $"{missing.Groups[1].Value} not found (the CUDA provider needs an NVIDIA driver, CUDA 13 and cuDNN 9 on the library path)"
            : FirstLine(reason);
    }

    /// <summary>The CUDA provider library shipped beside ONNX Runtime's core library, if this build has one.</summary>
    private static string? CudaProviderLibrary()
    {
        string name = OperatingSystem.IsWindows() ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
        string root = AppContext.BaseDirectory;
        string rid = System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier;
        return new[] { Path.Combine(root, name), Path.Combine(root, "runtimes", rid, "native", name) }
            .Concat(Directory.Exists(Path.Combine(root, "runtimes")) ? Directory.EnumerateFiles(Path.Combine(root, "runtimes"), name, SearchOption.AllDirectories) : [])
            .FirstOrDefault(File.Exists);
    }

    [GeneratedRegex(@"(lib[\w.+-]+\.so[\w.]*): cannot open shared object file")]
    private static partial Regex MissingLibrary();

    internal static string FirstLine(string s)
    {
        var lines = s.Split('\n');
        string first = lines[0].Trim();
        // ONNX Runtime's message for an input fed the wrong dims ends its first line with "for the following indices" and
        // lists them one a line ("index: 2 Got: 200 Expected: 224"); cut there, it named no dim (--shape contradicting
        // a fixed dim of the model). The list is kept on the same line.
        if (!first.EndsWith("for the following indices", StringComparison.Ordinal)) return first;
        var listed = lines.Skip(1).Select(l => l.Trim()).TakeWhile(l => l.StartsWith("index:", StringComparison.Ordinal));
        return string.Join("; ", [first, .. listed]);
    }
}
