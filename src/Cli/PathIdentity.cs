using System.Text;

namespace OnnxSlim.Cli;

/// <summary>
/// Whether two paths the user gave can name the same file: after `..`, `.` and symbolic links (in any existing
/// component, the last included) are resolved, and ignoring case, since on case-insensitive file systems
/// (macOS, Windows, casefolded folders) `Model.onnx` is `model.onnx`. Hard links are not seen.
/// </summary>
public static class PathIdentity
{
    private const int MaxLinkHops = 40;

    /// <summary>The absolute path with every existing symbolic link on the way resolved; missing components kept as written.</summary>
    public static string Resolve(string path)
    {
        // Not Path.GetFullPath first: it folds `link/..` by the text, where the file system follows the link first.
        string full = Path.IsPathRooted(path) ? path : Path.Combine(Environment.CurrentDirectory, path);
        string root = Path.GetPathRoot(full) ?? "/";
        string current = root;
        var rest = new Queue<string>(Parts(full[root.Length..]));
        int hops = 0;
        while (rest.Count > 0)
        {
            string part = rest.Dequeue();
            if (part == ".") continue;
            if (part == "..") { current = Path.GetDirectoryName(current) ?? root; continue; }
            string next = Path.Combine(current, part);
            string? target = LinkTarget(next);
            if (target is null || ++hops > MaxLinkHops) { current = next; continue; }
            // The link's target (relative to the link's folder, or from its root), then whatever followed the link.
            if (Path.IsPathRooted(target)) current = Path.GetPathRoot(target) ?? root;
            rest = new Queue<string>(Parts(Path.IsPathRooted(target) ? target[current.Length..] : target).Concat(rest));
        }
        return current;
    }

    private static string[] Parts(string path) =>
        path.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries);

    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> resolve to the same path, ignoring case.</summary>
    public static bool Same(string a, string b) => string.Equals(Resolve(a), Resolve(b), StringComparison.OrdinalIgnoreCase);

    /// <summary>True when they resolve to the same path exactly (not just by case).</summary>
    public static bool SameExactly(string a, string b) => string.Equals(Resolve(a), Resolve(b), StringComparison.Ordinal);

    /// <summary>Bytes of a file name in UTF-8 (file systems limit names to 255 bytes).</summary>
    public static int NameBytes(string path) => Encoding.UTF8.GetByteCount(Path.GetFileName(path));

    /// <summary>True when something (a file, a folder, or a link, dangling or not) is at <paramref name="path"/>.</summary>
    public static bool Occupied(string path) => File.Exists(path) || Directory.Exists(path) || LinkTarget(path) is not null;

    private static string? LinkTarget(string path)
    {
        try { return new FileInfo(path).LinkTarget; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
