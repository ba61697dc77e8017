namespace OnnxSlim.Calibration;

/// <summary>
/// The calibration files of a folder and its subfolders, ordered by their path below it: a data set laid out one folder
/// per class (ImageNet's train/val, torchvision's ImageFolder) reads as one set.
/// </summary>
internal static class FolderFiles
{
    /// <summary>Deep enough for any data set's layout; bounds the walk through a link that points back up.</summary>
    private const int MaxDepth = 8;

    /// <summary>Files whose extension (any case) is one of <paramref name="extensions"/> (lower case, with the dot).</summary>
    public static List<string> Find(string folder, IReadOnlyCollection<string> extensions)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = MaxDepth, IgnoreInaccessible = true };
        return [.. Directory.EnumerateFiles(folder, "*", options).Where(f => extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .OrderBy(f => Path.GetRelativePath(folder, f), StringComparer.Ordinal)];
    }

    /// <summary>
    /// <paramref name="count"/> of <paramref name="files"/> spread evenly over them (all when there are no more): the
    /// first ones of a class-per-folder set would all be of its first classes.
    /// </summary>
    public static List<string> Spread(IReadOnlyList<string> files, int count) =>
        files.Count <= count ? [.. files] : [.. Enumerable.Range(0, count).Select(i => files[(int)((long)i * files.Count / count)])];
}
