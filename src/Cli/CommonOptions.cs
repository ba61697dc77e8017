using System.CommandLine;
using OnnxSlim.Runtime;

namespace OnnxSlim.Cli;

/// <summary>Options several commands share, defined once so their spelling and help stay the same.</summary>
public static class CommonOptions
{
    public static Option<string[]> Shape() => new("--shape")
    {
        Description = "Concrete input shape for dynamic dims, NAME=D1,D2,... (repeatable)",
        AllowMultipleArgumentsPerToken = false,
        DefaultValueFactory = _ => [],
    };

    public static Option<string> Provider() => new("--provider")
    {
        Description = "ONNX Runtime execution provider: cpu or cuda",
        DefaultValueFactory = _ => "cpu",
    };

    public static Option<bool> Json() => new("--json") { Description = "Machine-readable JSON on stdout" };

    /// <summary>The provider, checked to be usable here before any work starts.</summary>
    public static Provider ParseProvider(string value)
    {
        var provider = ProviderNamed(value);
        try { SessionFactory.EnsureAvailable(provider); }
        catch (RuntimeUnavailableException e) { throw new CliError($"--provider {value}: {e.Message}"); }
        return provider;
    }

    /// <summary>The provider <paramref name="value"/> names, not yet checked to be usable here.</summary>
    public static Provider ProviderNamed(string value)
    {
        try { return Providers.Parse(value); }
        catch (ArgumentException e) { throw new CliError(e.Message); }
    }

    public static T ParseEnum<T>(string value, string option) where T : struct, Enum =>
        Enum.TryParse<T>(value, ignoreCase: true, out var v) && Enum.IsDefined(v) && !char.IsDigit(value.TrimStart('-', '+').FirstOrDefault())
            ? v
            : throw new CliError($"unknown {option} '{value}' (expected {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))})");

    /// <summary>The library's check of the options, its messages naming this command's flags.</summary>
    public static void CheckOptions(Pruning.PruneOptions options) => Check(options.Check);

    /// <summary>Runs a library check, its <see cref="ArgumentException"/> reworded with this command's flag.</summary>
    public static void Check(Action check)
    {
        try { check(); }
        catch (ArgumentException e) when (e.ParamName is { } name && Flags.TryGetValue(name, out var flag))
        {
            throw new CliError($"{flag} {e.Message.Replace($" (Parameter '{name}')", "")}");
        }
    }

    private static readonly Dictionary<string, string> Flags = new()
    {
        ["Ratio"] = "--cr", ["MinKeepFraction"] = "--min-keep", ["RoundTo"] = "--round-to", ["TimedRuns"] = "--runs",
        ["Target"] = "--target", ["Allocation"] = "--allocation", ["Compensation"] = "--compensation",
        ["Criterion"] = "--criterion", ["Calibration"] = "--calib", ["Plan"] = "--plan-in",
        ["HeldOutSamples"] = "--holdout", ["SensitivitySamples"] = "--check-samples", ["MinAgreement"] = "--min-agreement",
        ["Height"] = "--image-size", ["Width"] = "--image-size", ["Scale"] = "--image-scale", ["Mean"] = "--image-mean", ["Std"] = "--image-std",
    };

    public static string RequireFile(string path, string what)
    {
        if (File.Exists(path)) return path;
        throw new CliError(Directory.Exists(path) ? $"{what} '{path}' is a directory" : $"{what} not found: {path}");
    }
}
