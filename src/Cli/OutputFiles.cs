namespace OnnxSlim.Cli;

/// <summary>Writes the command's side outputs (plan, report) atomically: a temp file beside the target, then a rename.</summary>
public static class OutputFiles
{
    public static void WriteText(string path, string text)
    {
        string full = Path.GetFullPath(path);
        string tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllText(tmp, text);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
