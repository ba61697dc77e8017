using System.Runtime.CompilerServices;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Zeroed arrays of 8 MiB or more that Linux may back with 2 MiB pages. Why: a calibrated run allocates hundreds of
/// arrays of tens to hundreds of MB (a layer's kept rows and targets, its normal equations, their factor) and the kernel
/// maps each 4 KiB page on its first touch; on a virtual machine each such fault cost ~5–11 µs (ResNet-50 with 256 images:
/// 1.6–1.8 M faults, 19–20 s of system time). Transparent huge pages in "madvise" mode, the usual default, map 2 MiB per
/// fault in ranges that ask for it. The array is pinned only while it asks: should the GC move it later (a compaction of
/// the large object heap, rare), it merely loses the advice, which never changes any value. Pinned for good instead (the
/// pinned object heap), the space of freed arrays stayed resident: ResNet-50 with 1,024 images peaked ~100–200 MiB higher.
/// Elsewhere than Linux, and below the size, a plain array. The values are zero either way. Asked array by array even where
/// the whole managed heap was advised (<see cref="HugePages.AdviseManagedHeap"/>): memory the GC handed back to the system
/// and took again has lost that advice, and a library's host may not have given it.
/// </summary>
public static unsafe class LargeArrays
{
    /// <summary>Arrays from this size ask for huge pages: 4 of them at least, most of the range.</summary>
    public const long MinBytes = 8L << 20;

    public static T[] Zeroed<T>(long length) where T : unmanaged
    {
        if (length < 0) throw new ArgumentException($"length must be non-negative, got {length}");
        long bytes = length * Unsafe.SizeOf<T>();
        if (bytes < MinBytes || !OperatingSystem.IsLinux()) return new T[length];
        // Uninitialised, so that no page is touched before the advice; cleared after it (fresh pages were zero, reused ones not).
        var array = GC.AllocateUninitializedArray<T>(checked((int)length));
        fixed (T* data = array)
        {
            // A kernel without transparent huge pages refuses the advice: the pages are then plain ones.
            HugePages.AdviseInside((long)data, bytes);
            new Span<T>(data, checked((int)length)).Clear();
        }
        return array;
    }
}
