namespace OnnxSlim.Runtime;

public enum Provider { Cpu, Cuda }

public static class Providers
{
    public static Provider Parse(string value) => value.ToLowerInvariant() switch
    {
        "cpu" => Provider.Cpu,
        "cuda" or "gpu" => Provider.Cuda,
        _ => throw new ArgumentException($"unknown provider '{value}' (expected cpu or cuda)"),
    };
}

/// <summary>The runtime cannot do what was asked on this machine (no CUDA, model rejected); one-line message.</summary>
public sealed class RuntimeUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
