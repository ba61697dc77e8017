using System.Security.Cryptography;
using System.Text;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// Latency measurements kept on disk under ${ONNXSLIM_CACHE:-~/.cache/onnxslim}/latency, one JSON file per model
/// (SHA-256 of its bytes), provider, thread count, input shapes, ONNX Runtime version and CPU: a second plan of the
/// same model skips the measuring. A cache that cannot be read or written is skipped, never an error.
/// </summary>
internal sealed class LatencyCache(string folder)
{
    public static LatencyCache Default()
    {
        string? root = Environment.GetEnvironmentVariable("ONNXSLIM_CACHE");
        if (string.IsNullOrEmpty(root)) root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "onnxslim");
        return new LatencyCache(Path.Combine(root, "latency"));
    }

    public string Folder => folder;

    /// <summary>The cache key of a measurement: what the timings depend on.</summary>
    public static string Key(byte[] model, Provider provider, int threads, IReadOnlyList<string> shapes)
    {
        string modelHash = Convert.ToHexStringLower(SHA256.HashData(model));
        string setting = $"{provider}|{threads}|{string.Join(";", shapes)}|ort {SessionFactory.RuntimeVersion}|{Cpu()}|{Environment.ProcessorCount} cores";
        string settingHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(setting)))[..12];
        return $"{modelHash[..24]}-{provider.ToString().ToLowerInvariant()}-{threads}t-{settingHash}";
    }

    public LatencyMeasurements? Load(string key)
    {
        try
        {
            string path = PathOf(key);
            return File.Exists(path) && LatencyMeasurements.FromJson(File.ReadAllText(path)) is { } m && m.Key == key ? m : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Save(LatencyMeasurements measurements)
    {
        try
        {
            Directory.CreateDirectory(folder);
            string path = PathOf(measurements.Key), tmp = $"{path}.{Environment.ProcessId}.tmp";
            File.WriteAllText(tmp, measurements.ToJson());
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Measuring again next time is the only cost.
        }
    }

    private string PathOf(string key) => Path.Combine(folder, key + ".json");

    private static string Cpu()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (string line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }
}
