using Spectre.Console;

using OnnxSlim.Pruning;

namespace OnnxSlim.Cli.Reporting;

/// <summary>The before/after table printed at the end of a prune run.</summary>
public static class SummaryTable
{
    public static void Print(PruneSummary s, bool verbose)
    {
        foreach (var warning in s.Warnings) AnsiConsole.MarkupLine($"[yellow]warning:[/] {Markup.Escape(warning)}");
        var table = new Table().Title($"onnxslim: {Markup.Escape(Path.GetFileName(s.Model))} → {Markup.Escape(s.Output)}")
            .AddColumns("", "original", "slim", "change");
        Row(table, "parameters", s.Before.Params, s.After.Params);
        Row(table, "MACs", s.Before.Macs, s.After.Macs);
        Row(table, "file size (bytes)", s.Before.FileBytes, s.After.FileBytes);
        string threads = s.LatencyModel is { Threads: > 0 } lm ? $", {lm.Threads} thread{(lm.Threads == 1 ? "" : "s")}" : "";
        Latency(table, "latency batch 1", s.Before.LatencyBatch1Ms, s.After.LatencyBatch1Ms, s.Provider + threads);
        Latency(table, "latency batch 8", s.Before.LatencyBatch8Ms, s.After.LatencyBatch8Ms, s.Provider);
        AnsiConsole.Write(table);
        AnsiConsole.WriteLine($"{s.Target} reduction: requested {s.Cr:P1}, achieved {s.AchievedReduction:P1} ({s.Allocation} allocation, {s.Criterion} selection)");
        if (s.LatencyModel is { } model)
        {
            AnsiConsole.WriteLine($"latency model ({model.Provider}, {(model.Threads == 0 ? "all cores" : $"{model.Threads} thread{(model.Threads == 1 ? "" : "s")}")}): " +
                $"{model.Layers} layers ({model.TimedAlone} timed alone{(model.NotTimed > 0 ? $", {model.NotTimed} by MACs" : "")}), widths in steps of {model.Step}, " +
                (model.Cached ? "from the cache" : $"measured in {model.MeasureSeconds:F1} s") +
                $"; reduction predicted {model.PredictedReduction:P1}" + (model.MeasuredReduction is { } m ? $", measured {m:P1}" : ""));
            foreach (var c in model.Checks)
                AnsiConsole.WriteLine($"  check: solved for {c.Requested:P1}, predicted {c.PredictedReduction:P1}, measured {c.MeasuredReduction:P1}");
        }
        if (s.BudgetNote is not null) AnsiConsole.WriteLine($"note: {s.BudgetNote}");
        if (s.Compensation is not null) AnsiConsole.WriteLine($"compensation {s.Compensation}");
        foreach (var note in s.Notes) AnsiConsole.WriteLine($"note: {note}");
        if (s.AgreementBeforeRecovery is { } pre) AnsiConsole.WriteLine($"agreement before reconstruction ({s.AgreementInputs}): {pre.Describe()}");
        if (s.Agreement is { } a)
            AnsiConsole.WriteLine(s.AgreementOnRealData
                ? $"output agreement ({s.AgreementInputs}): {a.Describe()}" + (s.Recovery is null ? "" : $" after {s.Recovery}")
                : $"output agreement on {s.AgreementInputs} (not a measure of accuracy): {a.Describe()}" + (s.Recovery is null ? "" : $" after {s.Recovery}"));
        int frozen = s.Groups.Count(g => g.Frozen), prunable = s.Groups.Count - frozen;
        AnsiConsole.WriteLine($"channel groups: {s.Groups.Count} ({prunable} prunable, {frozen} frozen or ignored); {s.Groups.Count(g => g.RankCapped)} rank-capped");
        if (verbose)
        {
            var groups = new Table().AddColumns("group", "producers", "kept/total", "MACs share", "note");
            foreach (var g in s.Groups)
                groups.AddRow(g.Id.ToString(), Markup.Escape(string.Join(", ", g.Producers.Take(2)) + (g.Producers.Count > 2 ? ", …" : "")),
                    $"{g.Kept}/{g.Channels}", $"{g.MacsShare:P1}", Markup.Escape(g.Frozen ? $"frozen: {g.Reason}" : g.RankCapped ? "rank-capped" : ""));
            AnsiConsole.Write(groups);
        }
    }

    private static void Row(Table t, string label, long before, long after) =>
        t.AddRow(label, $"{before:N0}", $"{after:N0}", before == 0 ? "" : $"{(double)after / before - 1:+0.0%;-0.0%}");

    private static void Latency(Table t, string label, double? before, double? after, string provider)
    {
        if (before is null || after is null) return;
        t.AddRow($"{label} ({provider}, median ms)", $"{before:F2}", $"{after:F2}", LatencyChange.Describe(before.Value, after.Value));
    }
}
