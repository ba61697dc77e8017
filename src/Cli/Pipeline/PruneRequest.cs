using OnnxSlim.Runtime;
using OnnxSlim.Spectral;

namespace OnnxSlim.Cli.Pipeline;

/// <summary>Everything `onnxslim MODEL -o OUT ...` was asked to do, checked before any work starts.</summary>
public sealed record PruneRequest
{
    public required string ModelPath { get; init; }
    public required string OutputPath { get; init; }
    public double Cr { get; init; } = 0.5;
    public BudgetTarget Target { get; init; } = BudgetTarget.Macs;
    public string Criterion { get; init; } = "gem";
    public AllocationMethod Allocation { get; init; } = AllocationMethod.Sliming;
    public IReadOnlyList<string> Ignore { get; init; } = [];
    public double MinKeepFraction { get; init; } = 0.05;
    /// <summary>Keep counts are multiples of this; 0 = auto (8 for groups of 64+ channels, which ORT's
    /// blocked CPU kernels run much faster, exact counts for narrower groups).</summary>
    public int RoundTo { get; init; }
    public string? Calib { get; init; }
    public IReadOnlyList<string> Shapes { get; init; } = [];
    public Provider Provider { get; init; } = Provider.Cpu;
    public bool Validate { get; init; } = true;
    public string? Report { get; init; }
    public string? PlanOut { get; init; }
    public string? PlanIn { get; init; }
    public int Seed { get; init; }
    public bool Force { get; init; }
    /// <summary>none | exact (merge proven multiples) | data-free (also least-squares folds and BatchNorm-statistics corrections).</summary>
    public string Compensation { get; init; } = "data-free";

    public Rewriter.PruneOptions PruneOptions => Compensation switch
    {
        "none" => Rewriter.PruneOptions.Plain,
        "exact" => new Rewriter.PruneOptions { Compensation = Rewriter.Compensation.Exact },
        "data-free" => Rewriter.PruneOptions.DataFree,
        _ => throw new CliError($"unknown --compensation '{Compensation}' (expected none, exact or data-free)"),
    };
    public bool Verbose { get; init; }
    public int Runs { get; init; } = 20;
    public bool Bench { get; init; } = true;

    /// <summary>
    /// Channels ranked by the output error of the re-fitted readers, on calibration data
    /// (<see cref="ChannelElimination"/>); with sliming allocation its error curves replace the spectra.
    /// </summary>
    public const string RefitCriterion = "refit";

    public bool Refit => Criterion == RefitCriterion;

    public const double MaxCr = 0.95;
    public const int AutoRoundTo = 8, AutoRoundMinWidth = 64;

    /// <summary>The multiple a group of this width is rounded to.</summary>
    public int RoundFor(int width) => RoundTo > 0 ? RoundTo : width >= AutoRoundMinWidth ? AutoRoundTo : 1;

    public static int ParseRoundTo(string text) =>
        text.Equals("auto", StringComparison.OrdinalIgnoreCase) ? 0
        : int.TryParse(text, out int n) && n >= 1 ? n
        : throw new CliError($"--round-to must be 'auto' or a positive integer, got '{text}'");

    /// <summary>Bad combinations are refused here, before the model is read, with one-line messages.</summary>
    public void Check()
    {
        if (double.IsNaN(Cr) || Cr < 0 || Cr > MaxCr) throw new CliError($"--cr must be within [0, {MaxCr}], got {Cr}");
        if (MinKeepFraction is < 0 or > 1 || double.IsNaN(MinKeepFraction)) throw new CliError($"--min-keep must be a fraction within [0, 1], got {MinKeepFraction}");
        if (RoundTo < 0) throw new CliError($"--round-to must be 'auto' or at least 1, got {RoundTo}");
        _ = PruneOptions;
        if (Runs < 1) throw new CliError($"--runs must be at least 1, got {Runs}");
        if (!FilterSelectors.Criteria.Contains(Criterion) && !Refit)
            throw new CliError($"unknown --criterion '{Criterion}' (expected {string.Join(", ", FilterSelectors.Criteria)} or {RefitCriterion})");
        if (Refit && Calib is null) throw new CliError($"--criterion {RefitCriterion} needs calibration data (--calib FILE.npy)");
        if (Refit && PlanIn is not null) throw new CliError($"--criterion {RefitCriterion} and --plan-in both choose the channels; give one");
        CommonOptions.RequireFile(ModelPath, "model");
        if (Calib is not null) CommonOptions.RequireFile(Calib, "calibration file");
        if (PlanIn is not null) CommonOptions.RequireFile(PlanIn, "plan file");
        string input = Path.GetFullPath(ModelPath), output = Path.GetFullPath(OutputPath);
        if (string.Equals(input, output, StringComparison.Ordinal) && !Force)
            throw new CliError($"-o '{OutputPath}' is the input model; refusing to overwrite it (use --force)");
        if (Directory.Exists(output)) throw new CliError($"-o '{OutputPath}' is a directory");
        string? dir = Path.GetDirectoryName(output);
        if (dir is not null && !Directory.Exists(dir)) throw new CliError($"output folder does not exist: {dir}");
        if (Report is not null && Path.GetExtension(Report).ToLowerInvariant() is not (".json" or ".html" or ".htm"))
            throw new CliError($"--report must end in .json or .html, got '{Report}'");
    }
}
