namespace OnnxSlim.Cli;

/// <summary>
/// The files one command writes, committed together or not at all. Each is first written in full to a temp
/// file beside its target; only when every one is written are they renamed into place, a file they replace
/// being moved aside first. A failure at any point removes every temp file and every output already renamed,
/// and puts back what they replaced: the folders look as they did before the command.
/// </summary>
public sealed class OutputFiles
{
    private readonly List<(string Path, Action<Stream> Write)> _files = [];

    public IEnumerable<string> Paths => _files.Select(f => f.Path);

    /// <summary>Adds a file; <paramref name="write"/> runs at <see cref="Commit"/>, on a temp file.</summary>
    public void Add(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        if (_files.Any(f => PathIdentity.Same(f.Path, full)))
            throw new CliError($"two outputs of this run would be written to '{path}'");
        _files.Add((full, write));
    }

    public void AddText(string path, string text) => Add(path, stream =>
    {
        using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
        writer.Write(text);
    });

    /// <summary>Writes every file, then puts them all in place; on failure, nothing of this run is left.</summary>
    public void Commit()
    {
        var temps = new List<string>();
        var placed = new List<(string Target, string? Backup)>();
        try
        {
            var written = new List<(string Target, string Temp)>();
            foreach (var (target, write) in _files)
            {
                string temp = TempBeside(target);
                temps.Add(temp);
                using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                {
                    write(stream);
                    stream.Flush(flushToDisk: true);
                }
                written.Add((target, temp));
            }
            foreach (var (target, temp) in written)
            {
                string? backup = null;
                if (PathIdentity.Occupied(target))
                {
                    if (Directory.Exists(target) && new FileInfo(target).LinkTarget is null) throw new CliError($"output '{target}' is a directory");
                    backup = TempBeside(target);
                    temps.Add(backup);
                    File.Move(target, backup);
                }
                placed.Add((target, backup));
                File.Move(temp, target);
            }
            foreach (var (_, backup) in placed)
                if (backup is not null) TryDelete(backup);
        }
        catch
        {
            // Undo in reverse: each placed output removed and what it replaced moved back.
            for (int i = placed.Count - 1; i >= 0; i--)
            {
                var (target, backup) = placed[i];
                try
                {
                    TryDelete(target);
                    if (backup is not null && Exists(backup)) File.Move(backup, target);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Best effort: the original error is the one to report.
                }
            }
            foreach (var temp in temps) TryDelete(temp);
            throw;
        }
    }

    /// <summary>A fresh hidden name in the target's folder (a rename within one folder is atomic), short whatever the target's length.</summary>
    private static string TempBeside(string target) =>
        Path.Combine(Path.GetDirectoryName(target)!, $".onnxslim-{Guid.NewGuid():N}.tmp");

    /// <summary>A file or a link (dangling or not) at the path.</summary>
    private static bool Exists(string path) => File.Exists(path) || new FileInfo(path).LinkTarget is not null;

    private static void TryDelete(string path)
    {
        try
        {
            if (Exists(path)) File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
