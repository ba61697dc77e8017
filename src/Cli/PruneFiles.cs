namespace OnnxSlim.Cli;

/// <summary>The files a prune run reads and writes, checked before any work starts.</summary>
public sealed class PruneFiles
{
    public required string Model { get; init; }
    public required string Output { get; init; }
    public string? Calib { get; init; }
    public string? PlanIn { get; init; }
    public string? PlanOut { get; init; }
    public string? Report { get; init; }
    public bool Force { get; init; }

    public void Check()
    {
        CommonOptions.RequireFile(Model, "model");
        if (Calib is not null && !Directory.Exists(Calib)) CommonOptions.RequireFile(Calib, "calibration data");
        if (PlanIn is not null) CommonOptions.RequireFile(PlanIn, "plan file");
        string input = Path.GetFullPath(Model), output = Path.GetFullPath(Output);
        if (string.Equals(input, output, StringComparison.Ordinal) && !Force)
            throw new CliError($"-o '{Output}' is the input model; refusing to overwrite it (use --force)");
        if (Directory.Exists(output)) throw new CliError($"-o '{Output}' is a directory");
        string? dir = Path.GetDirectoryName(output);
        if (dir is not null && !Directory.Exists(dir)) throw new CliError($"output folder does not exist: {dir}");
        if (Report is not null && Path.GetExtension(Report).ToLowerInvariant() is not (".json" or ".html" or ".htm"))
            throw new CliError($"--report must end in .json or .html, got '{Report}'");
    }
}
