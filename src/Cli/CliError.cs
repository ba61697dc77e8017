namespace OnnxSlim.Cli;

/// <summary>A user-facing failure with its exit code: 1 validation failed, 2 bad usage or bad input.</summary>
public sealed class CliError(string message, int exitCode = ExitCodes.BadInput) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

public static class ExitCodes
{
    public const int Ok = 0;
    public const int ValidationFailed = 1;
    public const int BadInput = 2;
    public const int Internal = 3;
}
