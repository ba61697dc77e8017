using System.Diagnostics;
using Spectre.Console;

namespace OnnxSlim.Cli.Pipeline;

/// <summary>
/// Runs named pipeline stages and records their wall time: a live status line on a terminal, one plain
/// line per stage (on stderr, so stdout stays for results) when output is redirected.
/// </summary>
public sealed class Stages(bool interactive)
{
    private readonly Dictionary<string, double> _seconds = new(StringComparer.Ordinal);

    public static Stages ForConsole() => new(!Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive);

    public IReadOnlyDictionary<string, double> Seconds => _seconds;

    public T Run<T>(string name, Func<T> work)
    {
        long start = Stopwatch.GetTimestamp();
        T result = interactive
            ? AnsiConsole.Status().Spinner(Spinner.Known.Dots).Start($"{name}…", _ => work())
            : work();
        double s = Stopwatch.GetElapsedTime(start).TotalSeconds;
        _seconds[name] = _seconds.GetValueOrDefault(name) + s;
        if (interactive) AnsiConsole.MarkupLine($"[green]✓[/] {Markup.Escape(name)} [grey]({s:F2} s)[/]");
        else Console.Error.WriteLine($"onnxslim: {name} ({s:F2} s)");
        return result;
    }

    public void Run(string name, Action work) => Run(name, () => { work(); return 0; });
}
