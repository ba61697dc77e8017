using Microsoft.ML.OnnxRuntime;

namespace OnnxSlim.Runtime;

/// <summary>Creates ONNX Runtime sessions with the options onnxslim always uses.</summary>
public static class SessionFactory
{
    public static InferenceSession Create(byte[] model, Provider provider, int intraOpThreads = 0)
    {
        var options = CreateOptions(provider, intraOpThreads);
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

    private static SessionOptions CreateOptions(Provider provider, int intraOpThreads)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
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
                throw new RuntimeUnavailableException(
                    "CUDA execution provider is not available here (needs an NVIDIA GPU, libonnxruntime_providers_cuda.so from " +
                    $"tools/restore-ort.sh --gpu, CUDA 13 and cuDNN 9 on LD_LIBRARY_PATH): {FirstLine(e.Message)}", e);
            }
        }
        return options;
    }

    internal static string FirstLine(string s) => s.Split('\n')[0].Trim();
}
