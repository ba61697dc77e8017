using System.Runtime.InteropServices;

namespace OnnxSlim.Runtime;

/// <summary>
/// CPU time of the calling thread, in milliseconds (Linux and macOS; null elsewhere). Why: on a busy machine a
/// run's wall time includes the time other processes held the core; with one intra-op thread ONNX Runtime computes on
/// the calling thread, so its CPU time is the run without them.
/// </summary>
internal static partial class ThreadCpuTime
{
    private const int LinuxThreadClock = 3, MacThreadClock = 16; // CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    private static readonly int? Clock = OperatingSystem.IsLinux() ? LinuxThreadClock : OperatingSystem.IsMacOS() ? MacThreadClock : null;

    public static double? Milliseconds()
    {
        if (Clock is not int clock) return null;
        try
        {
            return ClockGetTime(clock, out var t) == 0 ? t.Seconds * 1e3 + t.Nanoseconds / 1e6 : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }
}
