using OnnxSlim.TestSupport;
using System.Diagnostics;

namespace OnnxSlim.Cli.Tests;

/// <summary>Runs the built `onnxslim` as a user would (a separate process), capturing exit code and output.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "onnxslim.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["COLUMNS"] = "200";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3))) { process.Kill(true); throw new TimeoutException("onnxslim did not finish in 3 minutes"); }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
