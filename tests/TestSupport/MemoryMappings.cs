using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.TestSupport;

/// <summary>What Linux says of this process's memory mappings (<c>/proc/self/smaps</c>).</summary>
public static class MemoryMappings
{
    /// <summary>Whether this kernel has transparent huge pages (a kernel built without them, as in some sandboxes, refuses the advice).</summary>
    public static bool HugePagesAvailable => OperatingSystem.IsLinux() && Directory.Exists("/sys/kernel/mm/transparent_hugepage");

    /// <summary>The VmFlags line of the mapping that holds <paramref name="address"/> ("hg": madvise(MADV_HUGEPAGE) covers it); null if none does.</summary>
    public static string? Flags(long address)
    {
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            // A mapping's first line is a maps line; the lines after it, its figures, are not.
            if (HugePages.Mapping(line) is { } mapping) inside = mapping.Start <= address && address < mapping.End;
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal)) return line;
        }
        return null;
    }
}
