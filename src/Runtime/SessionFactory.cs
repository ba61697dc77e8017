using Microsoft.ML.OnnxRuntime;

namespace OnnxSlim.Runtime;

/// <summary>Creates ONNX Runtime sessions with the options onnxslim always uses.</summary>
public static class SessionFactory
{
    public static InferenceSession Create(byte[] model, Provider provider, int intraOpThreads = 0, bool optimize = true)
    {
        NativeLibraryOverride.Apply();
        var options = CreateOptions(provider, intraOpThreads, optimize);
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

    private static SessionOptions CreateOptions(Provider provider, int intraOpThreads, bool optimize)
    {
        var options = new SessionOptions
        {
            // Probes run once: graph optimisation would cost more than it saves.
            GraphOptimizationLevel = optimize ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_ENABLE_BASIC,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        if (intraOpThreads > 0) options.IntraOpNumThreads = intraOpThreads;
        if (provider == Provider.Cuda)
        {
            try
            {
                // The V2 entry point goes through ORT's provider bridge, which loads
                // libonnxruntime_providers_cuda.so at run time; the legacy one exists only in CUDA builds.
                using var cuda = new OrtCUDAProviderOptions();
                cuda.UpdateOptions(new Dictionary<string, string> { ["device_id"] = "0" });
                options.AppendExecutionProvider_CUDA(cuda);
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                options.Dispose();
                throw new RuntimeUnavailableException(
                    "CUDA execution provider is not available here (needs an NVIDIA GPU, a CUDA-enabled libonnxruntime.so named by " +
                    $"{NativeLibraryOverride.Variable}, the providers from tools/restore-ort.sh gpu, CUDA 13 and cuDNN 9 on LD_LIBRARY_PATH): {FirstLine(e.Message)}", e);
            }
        }
        return options;
    }

    internal static string FirstLine(string s) => s.Split('\n')[0].Trim();
}
