using System.Runtime.InteropServices;

namespace OnnxSlim.Runtime;

/// <summary>
/// The C library's heap policy for the process's native allocations, which are ONNX Runtime's: every session has its own
/// arena, and a calibrated run opens hundreds (a pass per layer level, a check per group), each taking its memory from
/// malloc and handing it back when it closes. By default glibc maps allocations over its threshold (128 KiB, rising with
/// what is freed to at most 32 MiB) on their own and returns them to the system when freed, and trims the heap's free
/// top, so each session faults its pages in afresh; on a virtual machine a fault costs microseconds (PP-OCRv4 det, 32
/// pages at 640²: 1.28 M minor faults, 10–11 s of system time in a 26 s run). Kept in the heap, freed memory serves the
/// next session's arena.
/// </summary>
public static partial class NativeHeap
{
    // mallopt's parameters (malloc.h).
    private const int TrimThreshold = -1, MmapMax = -4, ArenaMax = -8;

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    /// <summary>
    /// Asks glibc to serve every allocation from its heap, to keep what is freed there, and to use one heap for all threads
    /// (per-thread heaps would each keep their own freed memory): process-wide, for as long as the process runs, so only
    /// for a process that exits after its work, such as the command line. False where the C library is not glibc
    /// (nothing is changed then).
    /// </summary>
    public static bool KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return MallOpt(ArenaMax, 1) == 1 && MallOpt(MmapMax, 0) == 1 && MallOpt(TrimThreshold, int.MaxValue) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Hands the free memory inside glibc's heap back to the system (<c>malloc_trim</c>), which
    /// <see cref="KeepFreedMemory"/> otherwise keeps for good: for when the work that needed it is over. False where the
    /// C library is not glibc.
    /// </summary>
    public static bool ReturnFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            MallocTrim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
