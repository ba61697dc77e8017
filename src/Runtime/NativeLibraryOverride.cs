using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace OnnxSlim.Runtime;

/// <summary>
/// Lets `ONNXSLIM_ORT_LIBRARY=/path/libonnxruntime.so` replace the restored core library, e.g. with a
/// CUDA-enabled build: the npm GPU package ships only the provider libraries, and the CPU package's core
/// library reports "CUDA execution provider is not enabled in this build".
/// </summary>
internal static class NativeLibraryOverride
{
    public const string Variable = "ONNXSLIM_ORT_LIBRARY";
    private static readonly Lock Gate = new();
    private static bool _applied;

    public static void Apply()
    {
        lock (Gate)
        {
            if (_applied) return;
            _applied = true;
            string? path = Environment.GetEnvironmentVariable(Variable);
            if (string.IsNullOrEmpty(path)) return;
            if (!File.Exists(path)) throw new RuntimeUnavailableException($"{Variable} names a missing file: {path}");
            OrtEnv.DisableDllImportResolver = true;
            NativeLibrary.SetDllImportResolver(typeof(OrtEnv).Assembly,
                (name, _, _) => name == "onnxruntime" ? NativeLibrary.Load(path) : IntPtr.Zero);
        }
    }
}
