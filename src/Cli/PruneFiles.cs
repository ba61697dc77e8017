namespace OnnxSlim.Cli;

/// <summary>
/// The files a prune run reads and writes, checked before any work starts: inputs exist, and every output can be
/// written (a file name in an existing folder, not a folder) without touching an input or another output of the
/// run, through symbolic links, `..` or case included (<see cref="PathIdentity"/>). Only --force lets -o replace the input model.
/// </summary>
public sealed class PruneFiles
{
    public required string Model { get; init; }
    public required string Output { get; init; }
    public string? Calib { get; init; }
    public string? PlanIn { get; init; }
    public string? PlanOut { get; init; }
    public string? Report { get; init; }
    public bool Force { get; init; }

    /// <summary>--external-data: the model's weights go to a data file beside -o, known (and checked) up front.</summary>
    public bool ExternalData { get; init; }

    /// <summary>Where the external data file of -o goes.</summary>
    public string DataFile => Path.Combine(Path.GetDirectoryName(Output) ?? "", GraphIO.ModelWriter.DataFileFor(Output));

    /// <summary>Files the run reads, by what they are to it.</summary>
    private IEnumerable<(string What, string Path)> Inputs()
    {
        yield return ("the input model", Model);
        if (Calib is not null) yield return ("--calib", Calib);
        if (PlanIn is not null) yield return ("--plan-in", PlanIn);
    }

    /// <summary>Files the run writes, by their flag (the model's external data file is checked once it is known).</summary>
    private IEnumerable<(string Flag, string Path)> Outputs()
    {
        yield return ("-o", Output);
        if (ExternalData) yield return ("-o's external data file", DataFile);
        if (PlanOut is not null) yield return ("--plan-out", PlanOut);
        if (Report is not null) yield return ("--report", Report);
    }

    public void Check()
    {
        CommonOptions.RequireFile(Model, "model");
        if (Calib is not null && !Directory.Exists(Calib)) CommonOptions.RequireFile(Calib, "calibration data");
        if (PlanIn is not null) CommonOptions.RequireFile(PlanIn, "plan file");
        if (Report is not null && Path.GetExtension(Report).ToLowerInvariant() is not (".json" or ".html" or ".htm"))
            throw new CliError($"--report must end in .json or .html, got '{Report}'");
        var outputs = Outputs().ToList();
        foreach (var (flag, path) in outputs) CheckWritable(flag, path);
        for (int i = 0; i < outputs.Count; i++)
            for (int j = i + 1; j < outputs.Count; j++)
                if (PathIdentity.Same(outputs[i].Path, outputs[j].Path))
                    throw new CliError($"{outputs[i].Flag} '{outputs[i].Path}' and {outputs[j].Flag} '{outputs[j].Path}' are the same file; give each output its own name");
        foreach (var (flag, path) in outputs) CheckAgainstInputs(flag, path, Inputs());
    }

    /// <summary>The external data file of -o when the run learns of it late (a model over 2 GB without --external-data):
    /// checked like the outputs named up front.</summary>
    public void CheckLateDataFile(IEnumerable<string> inputDataFiles)
    {
        if (ExternalData) return;
        const string what = "-o's external data file";
        CheckWritable(what, DataFile);
        foreach (var (flag, other) in Outputs())
            if (PathIdentity.Same(DataFile, other)) throw new CliError($"{what} '{DataFile}' and {flag} '{other}' are the same file; give each output its own name");
        CheckAgainstInputs(what, DataFile, Inputs().Concat(inputDataFiles.Select(f => ("an external data file of the input model", f))));
    }

    /// <summary>The outputs against the input model's external data files (known once the model is read).</summary>
    public void CheckAgainstInputData(IEnumerable<string> inputDataFiles)
    {
        var data = inputDataFiles.Select(f => ("an external data file of the input model", f)).ToList();
        foreach (var (flag, path) in Outputs()) CheckAgainstInputs(flag, path, data);
    }

    private void CheckAgainstInputs(string flag, string path, IEnumerable<(string What, string Path)> inputs)
    {
        foreach (var (what, input) in inputs)
        {
            if (!PathIdentity.Same(path, input)) continue;
            // --force lets -o replace the input model (and the external data beside it), nothing else.
            bool replacesModel = what == "the input model" || what.StartsWith("an external data file", StringComparison.Ordinal);
            if (Force && replacesModel && (flag == "-o" || flag.StartsWith("-o's", StringComparison.Ordinal))) continue;
            if (!PathIdentity.SameExactly(path, input))
                throw new CliError($"{flag} '{path}' differs from {what} '{input}' only in case, which is the same file on case-insensitive file systems; choose another name");
            throw new CliError(what == "the input model" && flag == "-o"
                ? $"-o '{path}' is the input model; refusing to overwrite it (use --force)"
                : $"{flag} '{path}' is {what}; refusing to overwrite it");
        }
    }

    /// <summary>A file name, in a folder that exists, that is not itself a folder, and that the file system can hold.</summary>
    public static void CheckWritable(string flag, string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new CliError($"{flag} needs a file name, got '{path}'");
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full) || path.EndsWith('/') || path.EndsWith(Path.DirectorySeparatorChar))
            throw new CliError($"{flag} '{path}' is a directory; give a file name");
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new CliError($"{flag} '{path}': folder '{dir}' does not exist");
        if (PathIdentity.NameBytes(full) > 255) throw new CliError($"{flag}: file name '{Path.GetFileName(full)[..40]}…' is longer than 255 bytes");
        // Found now rather than after the work: a folder this user cannot write in.
        try
        {
            using var probe = new FileStream(Path.Combine(dir, $".onnxslim-{Guid.NewGuid():N}.tmp"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliError($"{flag} '{path}': cannot write in folder '{dir}' ({(e is UnauthorizedAccessException ? "permission denied" : e.Message.Split('\n')[0].Trim())})");
        }
    }
}
