using System.CommandLine;
using System.Text.Json;
using OnnxSlim.Pruning;
using OnnxSlim.Cli.Reporting;
using OnnxSlim.Spectral;
using Spectre.Console;

namespace OnnxSlim.Cli.Commands;

/// <summary>`onnxslim analyze MODEL`: the spectra behind the plan, group by group, and the keep counts at --cr.</summary>
public static class AnalyzeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model" };
        var cr = new Option<double>("--cr") { Description = "Reduction to show keep counts for", DefaultValueFactory = _ => 0.5 };
        var target = new Option<string>("--target") { Description = "macs, params or filters", DefaultValueFactory = _ => "macs" };
        var minKeep = new Option<double>("--min-keep") { Description = "Per-group floor (fraction)", DefaultValueFactory = _ => 0.05 };
        var plot = new Option<string?>("--plot") { Description = "Write the normalised spectra plot: FILE.svg or FILE.html" };
        var shape = CommonOptions.Shape();
        var json = CommonOptions.Json();
        var cmd = new Command("analyze", "Singular-value spectra per channel group and the SLIMING keep counts") { model, cr, target, minKeep, plot, shape, json };
        cmd.SetAction(p =>
        {
            string path = CommonOptions.RequireFile(p.GetValue(model)!, "model");
            double reduction = p.GetValue(cr);
            var budgetTarget = CommonOptions.ParseEnum<BudgetTarget>(p.GetValue(target)!, "--target");
            var options = new PruneOptions { Ratio = reduction, Target = budgetTarget, MinKeepFraction = p.GetValue(minKeep) };
            CommonOptions.CheckOptions(options);
            string? plotPath = p.GetValue(plot);
            if (plotPath is not null && Path.GetExtension(plotPath).ToLowerInvariant() is not (".svg" or ".html"))
                throw new CliError($"--plot must end in .svg or .html, got '{plotPath}'");
            using var onnx = ModelFiles.Load(path);
            if (onnx.HasExternalData) onnx.InlineExternalData();
            var analysis = ModelAnalysis.Run(onnx, p.GetValue(shape)!);
            var config = Planner.Configure(analysis, options);
            var allocation = config.Allocation;
            var byId = config.Spectra;
            var prunable = config.Active;

            var rows = analysis.Groups.Select(g => new
            {
                id = g.Id,
                producers = g.Producers.Select(n => n.Id).ToArray(),
                channels = g.Width,
                frozen = g.Frozen,
                reason = g.Reason,
                sigma1 = byId.TryGetValue(g.Id, out var s) ? s.Sigma1 : (double?)null,
                rank = s?.StructuralRank,
                rank_capped = s?.IsRankCapped ?? false,
                effective_rank_90 = s?.EffectiveRank(0.90),
                effective_rank_95 = s?.EffectiveRank(0.95),
                effective_rank_99 = s?.EffectiveRank(0.99),
                keep = allocation.Keep[g.Id],
                round_to = g.Frozen ? (int?)null : Planner.RoundTo(g, options, analysis.MapPixels(g)),
                conv_groups = g.Blocks,
                map = analysis.MapPixels(g),
            }).ToList();

            if (plotPath is not null)
            {
                var svg = SpectraPlot.Svg([.. prunable.Select(g => ($"group {g.Id} ({g.Width} ch): {g.Producers[0].Id}",
                    Enumerable.Range(0, byId[g.Id].StructuralRank).Select(byId[g.Id].Normalized).ToArray()))], allocation.Threshold);
                File.WriteAllText(plotPath, plotPath.EndsWith(".svg", StringComparison.OrdinalIgnoreCase) ? svg
                    : $"<!doctype html><html><head><meta charset=\"utf-8\"><title>onnxslim analyze</title></head><body>{svg}</body></html>");
            }
            if (p.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { model = path, target = budgetTarget.ToString().ToLowerInvariant(), cr = reduction,
                    threshold = allocation.Threshold, achieved = allocation.AchievedReduction, reachable = allocation.Reachable, groups = rows }));
                return ExitCodes.Ok;
            }
            var table = new Table().AddColumns("group", "producers", "width", "σ₁", "eff. rank 90/95/99%", $"keep @ {reduction:P0}", "step", "note");
            foreach (var r in rows)
                table.AddRow(r.id.ToString(), Markup.Escape(string.Join(", ", r.producers.Take(2)) + (r.producers.Length > 2 ? ", …" : "")), r.channels.ToString(),
                    r.sigma1 is { } s1 ? $"{s1:G4}" : "", r.effective_rank_90 is null ? "" : $"{r.effective_rank_90}/{r.effective_rank_95}/{r.effective_rank_99}",
                    $"{r.keep}", r.round_to?.ToString() ?? "", Markup.Escape(r.frozen ? $"frozen: {r.reason}" : string.Join("; ", new[]
                    {
                        r.rank_capped ? $"rank-capped (rank ≤ {r.rank} < {r.channels}): keep count read from the non-zero spectrum, scaled to the width" : "",
                        r.conv_groups > 1 ? $"{r.conv_groups} conv groups: the same count kept in each" : "",
                        r.conv_groups == 1 && r.round_to == PruneOptions.HighResolutionRoundTo && options.RoundTo == 0 ? $"maps of {r.map:N0} positions: NCHWc blocks of {PruneOptions.HighResolutionRoundTo}" : "",
                    }.Where(t => t.Length > 0))));
            AnsiConsole.Write(table);
            AnsiConsole.WriteLine("step: keep counts are multiples of it (auto: " + $"{PruneOptions.HighResolutionRoundTo} on maps of ≥{PruneOptions.HighResolutionPixels:N0} positions, {PruneOptions.AutoRoundTo} for other groups of ≥{PruneOptions.AutoRoundMinWidth} channels, else 1; × conv groups for grouped convs)");
            AnsiConsole.WriteLine($"threshold τ = {allocation.Threshold:G4} on σ/σ₁ gives {allocation.AchievedReduction:P1} {budgetTarget.ToString().ToLowerInvariant()} reduction" +
                (allocation.Reachable ? "" : $" (requested {reduction:P1} is not reachable; maximum {allocation.MaxReduction:P1})"));
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
