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

    private const string DataFileFlag = "-o's external data file";

    /// <summary>A file the run reads; <paramref name="PartOfModel"/>: the input model or its external data, which --force lets -o replace.</summary>
    private sealed record InputFile(string What, string Path, bool PartOfModel);

    /// <summary>A file the run writes; <paramref name="OfModel"/>: -o or its external data file.</summary>
    private sealed record OutputFile(string Flag, string Path, bool OfModel);

    private IEnumerable<InputFile> Inputs()
    {
        yield return new("the input model", Model, PartOfModel: true);
        if (Calib is not null) yield return new("--calib", Calib, PartOfModel: false);
        if (PlanIn is not null) yield return new("--plan-in", PlanIn, PartOfModel: false);
    }

    private static IEnumerable<InputFile> ModelData(IEnumerable<string> inputDataFiles) =>
        inputDataFiles.Select(f => new InputFile("an external data file of the input model", f, PartOfModel: true));

    /// <summary>Files the run writes (the model's external data file when known up front: --external-data).</summary>
    private IEnumerable<OutputFile> Outputs()
    {
        yield return new("-o", Output, OfModel: true);
        if (ExternalData) yield return new(DataFileFlag, DataFile, OfModel: true);
        if (PlanOut is not null) yield return new("--plan-out", PlanOut, OfModel: false);
        if (Report is not null) yield return new("--report", Report, OfModel: false);
    }

    public void Check()
    {
        CommonOptions.RequireFile(Model, "model");
        if (Calib is not null && !Directory.Exists(Calib)) CommonOptions.RequireFile(Calib, "calibration data");
        if (PlanIn is not null) CommonOptions.RequireFile(PlanIn, "plan file");
        if (Report is not null && Path.GetExtension(Report).ToLowerInvariant() is not (".json" or ".html" or ".htm"))
            throw new CliError($"--report must end in .json or .html, got '{Report}'");
        var outputs = Outputs().ToList();
        foreach (var o in outputs) CheckWritable(o.Flag, o.Path);
        for (int i = 0; i < outputs.Count; i++)
            for (int j = i + 1; j < outputs.Count; j++)
                CheckDistinct(outputs[i], outputs[j]);
        foreach (var o in outputs) CheckAgainstInputs(o, Inputs());
    }

    /// <summary>The outputs against the input model's external data files (known once the model is read).</summary>
    public void CheckAgainstInputData(IEnumerable<string> inputDataFiles)
    {
        var data = ModelData(inputDataFiles).ToList();
        foreach (var o in Outputs()) CheckAgainstInputs(o, data);
    }

    /// <summary>The external data file of -o when the run learns of it late (a model over 2 GB without --external-data):
    /// checked like the outputs named up front.</summary>
    public void CheckLateDataFile(IEnumerable<string> inputDataFiles)
    {
        if (ExternalData) return;
        var data = new OutputFile(DataFileFlag, DataFile, OfModel: true);
        CheckWritable(data.Flag, data.Path);
        foreach (var o in Outputs()) CheckDistinct(data, o);
        CheckAgainstInputs(data, Inputs().Concat(ModelData(inputDataFiles)));
    }

    private static void CheckDistinct(OutputFile a, OutputFile b)
    {
        if (PathIdentity.Same(a.Path, b.Path))
            throw new CliError($"{a.Flag} '{a.Path}' and {b.Flag} '{b.Path}' " + (PathIdentity.SameExactly(a.Path, b.Path)
                ? "are the same file; give each output its own name"
                : "differ only in case, which is the same file on case-insensitive file systems; give each output its own name"));
    }

    private void CheckAgainstInputs(OutputFile output, IEnumerable<InputFile> inputs)
    {
        foreach (var input in inputs)
        {
            if (!PathIdentity.Same(output.Path, input.Path)) continue;
            // --force lets -o (and its data file) replace the input model (and its data files), nothing else.
            if (Force && output.OfModel && input.PartOfModel) continue;
            if (!PathIdentity.SameExactly(output.Path, input.Path))
                throw new CliError($"{output.Flag} '{output.Path}' differs from {input.What} '{input.Path}' only in case, " +
                    "which is the same file on case-insensitive file systems; choose another name");
            throw new CliError(output.Flag == "-o" && input.What == "the input model"
                ? $"-o '{output.Path}' is the input model; refusing to overwrite it (use --force)"
                : $"{output.Flag} '{output.Path}' is {input.What}; refusing to overwrite it");
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
