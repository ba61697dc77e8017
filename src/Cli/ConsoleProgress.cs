using OnnxSlim.Pruning;
using Spectre.Console;

namespace OnnxSlim.Cli;

/// <summary>
/// Shows a prune run's progress: a live status line with per-step counts on a terminal, one plain line per
/// finished stage otherwise (on stderr, so stdout stays for results).
/// </summary>
public sealed class ConsoleProgress(bool interactive)
{
    private StatusContext? _status;

    public static ConsoleProgress ForConsole(bool quiet) =>
        new(!quiet && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive);

    public bool Interactive => interactive;

    /// <summary>A stage of the command itself (loading, writing), shown like the library's stages.</summary>
    public T Stage<T>(string name, Func<T> work)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        T result = work();
        Report(new PruneProgress(name, 1, 1, System.Diagnostics.Stopwatch.GetElapsedTime(start), Finished: true));
        return result;
    }

    /// <summary>Runs <paramref name="work"/> with a live status line when interactive.</summary>
    public T Run<T>(Func<Action<PruneProgress>, T> work)
    {
        if (!interactive) return work(Report);
        return AnsiConsole.Status().Spinner(Spinner.Known.Dots).Start("starting…", ctx =>
        {
            _status = ctx;
            try { return work(Report); }
            finally { _status = null; }
        });
    }

    private void Report(PruneProgress p)
    {
        if (!interactive)
        {
            if (p.Finished) Console.Error.WriteLine($"onnxslim: {p.Stage} ({p.Elapsed.TotalSeconds:F2} s)");
            else if (p.Total > 0 && (p.Done == p.Total || p.Done % Math.Max(1, p.Total / 10) == 0))
                Console.Error.WriteLine($"onnxslim: {p.Stage}: {p.Done}/{p.Total} ({p.Elapsed.TotalSeconds:F1} s)");
            return;
        }
        if (p.Finished) AnsiConsole.MarkupLine($"[green]✓[/] {Markup.Escape(p.Stage)} [grey]({p.Elapsed.TotalSeconds:F2} s)[/]");
        else _status?.Status(Markup.Escape(p.Total > 0 ? $"{p.Stage}: {p.Done}/{p.Total} ({p.Elapsed.TotalSeconds:F0} s)…" : $"{p.Stage}…"));
    }
}
