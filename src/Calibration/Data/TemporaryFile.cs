using Microsoft.Win32.SafeHandles;

namespace OnnxSlim.Calibration;

/// <summary>
/// A new read-write file in the temporary folder that nothing outlives: on Unix its name is removed as soon as it is
/// open (the space is freed with the last handle, even if the process is killed), elsewhere the OS deletes it when its
/// handle closes. Also what the folder has room for, and the error that says so.
/// </summary>
internal static class TemporaryFile
{
    /// <summary>Opens a new file named onnxslim-PID-<paramref name="purpose"/>-GUID<paramref name="extension"/>.</summary>
    public static SafeFileHandle Create(string purpose, string extension) => Create(purpose, extension, Path.GetTempPath());

    internal static SafeFileHandle Create(string purpose, string extension, string folder)
    {
        string path = Path.Combine(folder, $"onnxslim-{Environment.ProcessId}-{purpose}-{Guid.NewGuid():N}{extension}");
        SafeFileHandle handle;
        try { handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose); }
        catch (DirectoryNotFoundException e) { throw new IOException($"the temporary folder {folder} does not exist; set TMPDIR to a folder that does", e); }
        catch (UnauthorizedAccessException e) { throw new IOException($"the temporary folder {folder} cannot be written to; set TMPDIR to a folder that can", e); }
        if (!OperatingSystem.IsWindows()) File.Delete(path);
        return handle;
    }

    /// <summary>Bytes free in the temporary folder's file system, or null when the OS does not say.</summary>
    public static long? FreeBytes()
    {
        try { return new DriveInfo(Path.GetTempPath()).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// Throws before the work that would fill the temporary folder with <paramref name="bytes"/> of <paramref name="what"/>
    /// when it has less free (a spill that runs out of room fails only once that work is done).
    /// </summary>
    public static void EnsureRoom(long bytes, string what) => EnsureRoom(bytes, what, FreeBytes());

    internal static void EnsureRoom(long bytes, string what, long? free)
    {
        if (free is { } available && available < bytes)
            throw new IOException($"{what} need {Mib(bytes)} in the temporary folder {Path.GetTempPath()}, which has {Mib(available)} free; "
                + "set TMPDIR to a folder with more room");
    }

    /// <summary>
    /// <paramref name="e"/> as said to the user: a full disk (ENOSPC on Unix; ERROR_DISK_FULL or ERROR_HANDLE_DISK_FULL on
    /// Windows) names the temporary folder and what filled it; any other error is returned as it is.
    /// </summary>
    public static IOException Explain(IOException e, string what) =>
        e.HResult is 28 or unchecked((int)0x80070070) or unchecked((int)0x80070027)
            ? new IOException($"the temporary folder {Path.GetTempPath()} ran out of room for {what}; set TMPDIR to a folder with more room", e)
            : e;

    private static string Mib(long bytes) => $"{(bytes + (1 << 20) - 1) >> 20:N0} MiB";
}
