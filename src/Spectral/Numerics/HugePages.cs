using System.Globalization;
using System.Runtime.InteropServices;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Linux's transparent huge pages for this process's memory. In "madvise" mode, the default of most distributions, the
/// kernel maps 2 MiB per page fault only in ranges that asked for it (<c>madvise(MADV_HUGEPAGE)</c>), 4 KiB elsewhere; on a
/// virtual machine a fault costs ~5–11 µs, so a calibrated run that touches GBs of fresh memory spends seconds in them.
/// The advice never changes a value; a kernel without transparent huge pages refuses it, and nothing changes.
/// </summary>
public static unsafe partial class HugePages
{
    public const long Size = 2L << 20;

    private const int MadviseHugePage = 14; // MADV_HUGEPAGE, the same on every Linux architecture

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);

    /// <summary>Advises the 2 MiB-aligned inside of [start, start + bytes); false where refused, too short or not Linux.</summary>
    internal static bool AdviseInside(long start, long bytes)
    {
        long first = (start + Size - 1) & ~(Size - 1), end = (start + bytes) & ~(Size - 1);
        return OperatingSystem.IsLinux() && end > first && Advise(first, end - first);
    }

    /// <summary><c>madvise(MADV_HUGEPAGE)</c> on a page-aligned range; false where refused or where the C library has no such call.</summary>
    private static bool Advise(long start, long bytes)
    {
        try
        {
            return Madvise((nint)start, (nuint)bytes, MadviseHugePage) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Asks for huge pages over the managed heap: the run of adjacent anonymous mappings that holds a fresh managed array,
    /// which is the GC's reservation (regions it commits later, inside it, keep the advice) and its neighbours (the GC's
    /// tables, thread stacks and heaps of the C library). For a process that owns its memory, as the command line does: a
    /// library inside someone else's process should not decide this for it. Returns the bytes advised, 0 where nothing was
    /// (not Linux, no <c>/proc</c>, a kernel without transparent huge pages). Why: arrays the GC clears or copies into on
    /// first use (protobuf's serialised sub-models, the rewrite's and the ranking's buffers) were most of a calibrated run's
    /// 4 KiB faults; ResNet-50 with 256 images took 0.79–0.88 M faults and 14.7–17.7 s of system time, 0.59–0.66 M and
    /// 11.5–13.5 s advised.
    /// </summary>
    public static long AdviseManagedHeap()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        List<(long Start, long End, bool Anonymous)> maps;
        try
        {
            maps = [.. File.ReadLines("/proc/self/maps").Select(Mapping).OfType<(long, long, bool)>()];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
        long advised = 0;
        var done = new HashSet<long>();
        // A small object and a large one: a GC with segments instead of regions reserves them apart.
        foreach (int size in new[] { 64, 1 << 20 })
        {
            var probe = new byte[size];
            long address;
            fixed (byte* p = probe) address = (long)p;
            int i = maps.FindIndex(m => m.Start <= address && address < m.End);
            if (i < 0 || !maps[i].Anonymous) continue;
            int lo = i, hi = i;
            while (lo > 0 && maps[lo - 1].Anonymous && maps[lo - 1].End == maps[lo].Start) lo--;
            while (hi + 1 < maps.Count && maps[hi + 1].Anonymous && maps[hi + 1].Start == maps[hi].End) hi++;
            if (!done.Add(maps[lo].Start)) continue;
            long bytes = maps[hi].End - maps[lo].Start;
            if (Advise(maps[lo].Start, bytes)) advised += bytes;
        }
        return advised;
    }

    /// <summary>
    /// A line of <c>/proc/self/maps</c> ("start-end perms offset dev inode [path]"): its range, and whether it is anonymous
    /// memory; null for a line not of that form (nothing is advised around it).
    /// </summary>
    internal static (long Start, long End, bool Anonymous)? Mapping(string line)
    {
        var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 5) return null;
        var range = fields[0].Split('-');
        if (range.Length != 2 || !long.TryParse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long start)
            || !long.TryParse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long end) || end <= start) return null;
        string path = fields.Length > 5 ? fields[5].Trim() : "";
        // Named anonymous memory ("[anon:…]") is anonymous too; the stack, the C library's brk heap and the vDSO are not the GC's.
        bool anonymous = fields[4] == "0" && (path.Length == 0 || path.StartsWith("[anon:", StringComparison.Ordinal));
        return (start, end, anonymous);
    }
}
