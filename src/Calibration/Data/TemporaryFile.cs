using Microsoft.Win32.SafeHandles;

namespace OnnxSlim.Calibration;

/// <summary>
/// A new read-write file in the temporary folder that nothing outlives: on Unix its name is removed as soon as it is
/// open (the space is freed with the last handle, even if the process is killed), elsewhere the OS deletes it when its
/// handle closes.
/// </summary>
internal static class TemporaryFile
{
    /// <summary>Opens a new file named onnxslim-PID-<paramref name="purpose"/>-GUID<paramref name="extension"/>.</summary>
    public static SafeFileHandle Create(string purpose, string extension)
    {
        string path = Path.Combine(Path.GetTempPath(), $"onnxslim-{Environment.ProcessId}-{purpose}-{Guid.NewGuid():N}{extension}");
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
        if (!OperatingSystem.IsWindows()) File.Delete(path);
        return handle;
    }
}
