using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

using OnnxSlim.Pruning;

namespace OnnxSlim.Cli.Reporting;

/// <summary>Writes the prune report as JSON (for pipelines) or as one self-contained HTML page.</summary>
public static class ReportWriter
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>The report's text, JSON or HTML by the extension of <paramref name="path"/>.</summary>
    public static string Render(string path, PruneSummary summary) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".json" => JsonSerializer.Serialize(summary, JsonOptions),
        ".html" or ".htm" => Html(summary, summary.Threshold),
        _ => throw new CliError($"--report must end in .json or .html, got '{path}'"),
    };

    public static string Html(PruneSummary s, double? threshold)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>onnxslim report</title><style>")
          .Append("body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}")
          .Append("th:first-child,td:first-child{text-align:left}.bar{background:#4a7;height:10px;display:inline-block}.bg{background:#eee;width:300px;display:inline-block}.frozen{color:#999}")
          .Append("</style></head><body>");
        foreach (var warning in s.Warnings)
            sb.Append("<p style=\"background:#fde2e1;border:1px solid #c0392b;padding:8px\"><b>Warning:</b> ").Append(Enc(warning)).Append("</p>");
        sb.Append(inv, $"<h1>onnxslim: {Enc(Path.GetFileName(s.Model))}</h1><p>{Enc(s.Target)} reduction requested {s.Cr:P0}, achieved {s.AchievedReduction:P1}; ")
          .Append(inv, $"allocation {Enc(s.Allocation)}, criterion {Enc(s.Criterion)}, provider {Enc(s.Provider)}.</p>");
        if (s.BudgetNote is not null) sb.Append("<p><b>Note:</b> ").Append(Enc(s.BudgetNote)).Append("</p>");
        if (s.Compensation is not null) sb.Append("<p>Compensation ").Append(Enc(s.Compensation)).Append(".</p>");
        foreach (var note in s.Notes) sb.Append("<p><b>Note:</b> ").Append(Enc(note)).Append("</p>");
        sb.Append("<h2>Summary</h2><table><tr><th></th><th>before</th><th>after</th><th>ratio</th></tr>");
        Row(sb, "parameters", s.Before.Params, s.After.Params);
        Row(sb, "MACs", s.Before.Macs, s.After.Macs);
        Row(sb, "file bytes", s.Before.FileBytes, s.After.FileBytes);
        if (s.Before.LatencyBatch1Ms is { } b1 && s.After.LatencyBatch1Ms is { } a1) RowMs(sb, "latency batch 1 (ms)", b1, a1);
        if (s.Before.LatencyBatch8Ms is { } b8 && s.After.LatencyBatch8Ms is { } a8) RowMs(sb, "latency batch 8 (ms)", b8, a8);
        sb.Append("</table>");
        if (s.Agreement is { } ag)
        {
            sb.Append("<h2>Output agreement</h2><p>").Append(Enc(s.AgreementInputs))
              .Append(s.AgreementOnRealData ? "" : " — not a measure of accuracy on real data").Append("</p><table><tr><th></th><th>cosine</th><th>max abs error</th><th>top-1 agreement</th></tr>");
            if (s.AgreementBeforeRecovery is { } pre) AgreeRow(sb, "pruned, no recovery", pre);
            AgreeRow(sb, s.Recovery is null ? "pruned" : $"pruned + {s.Recovery}", ag);
            sb.Append("</table>");
        }
        if (s.Before.LatencyBatch1Ms is not null && s.After.LatencyBatch1Ms is not null)
        {
            sb.Append("<h2>Latency</h2><table>");
            double max = new[] { s.Before.LatencyBatch1Ms, s.After.LatencyBatch1Ms, s.Before.LatencyBatch8Ms, s.After.LatencyBatch8Ms }.Max(v => v ?? 0);
            foreach (var (label, v) in new[] { ("original, batch 1", s.Before.LatencyBatch1Ms), ("pruned, batch 1", s.After.LatencyBatch1Ms), ("original, batch 8", s.Before.LatencyBatch8Ms), ("pruned, batch 8", s.After.LatencyBatch8Ms) })
                if (v is { } ms) sb.Append(inv, $"<tr><td>{label}</td><td><span class=\"bg\"><span class=\"bar\" style=\"width:{300 * ms / max:F0}px\"></span></span></td><td>{ms:F2} ms</td></tr>");
            sb.Append("</table>");
        }
        // With --calib the threshold cut each ranked group's re-fit error curve (weighed), not its weight spectrum: those curves
        // are drawn under it, since the spectra with the threshold across them would say why a group kept what it did, wrongly.
        var curves = s.Groups.Where(g => g.AllocationCurve is not null).Select(g => (Label(g), g.AllocationCurve!)).ToList();
        var spectra = s.Groups.Where(g => g.NormalizedSpectrum is not null).Select(g => (Label(g), g.NormalizedSpectrum!)).ToList();
        if (s.Criterion == "refit" && curves.Count > 0)
            sb.Append("<h2>Allocation curves</h2><p>Per channel group, unit by unit, what the allocation compared with its threshold τ: ")
              .Append("for a group ranked on calibration data, the relative error its re-fitted readers are left with at each width, ")
              .Append("times the group's weight (its cost per channel, and the end-to-end check's boost); for one that could not be ranked, ")
              .Append("σᵢ/σ₁ of its weights. A group keeps the units at or above τ, then its floor and rounding.</p>")
              .Append(SpectraPlot.Svg(curves, threshold, title: "Allocation curves per channel group"));
        else if (spectra.Count > 0) sb.Append("<h2>Normalised spectra</h2>").Append(SpectraPlot.Svg(spectra, threshold));
        sb.Append("<h2>Channel groups</h2><table><tr><th>group</th><th>producers</th><th>kept / total</th><th></th><th>note</th></tr>");
        foreach (var g in s.Groups)
        {
            string cls = g.Frozen ? " class=\"frozen\"" : "";
            double frac = g.Channels == 0 ? 0 : (double)g.Kept / g.Channels;
            string note = g.Frozen ? $"frozen: {g.Reason}" : g.RankCapped ? "rank-capped" : "";
            sb.Append(inv, $"<tr{cls}><td>{g.Id}</td><td>{Enc(string.Join(", ", g.Producers.Take(4)))}{(g.Producers.Count > 4 ? ", …" : "")}</td><td>{g.Kept} / {g.Channels}</td>")
              .Append(inv, $"<td><span class=\"bg\"><span class=\"bar\" style=\"width:{300 * frac:F0}px\"></span></span></td><td>{Enc(note)}</td></tr>");
        }
        sb.Append("</table></body></html>");
        return sb.ToString();
    }

    private static void Row(StringBuilder sb, string label, long before, long after) =>
        sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{label}</td><td>{before:N0}</td><td>{after:N0}</td><td>{(before == 0 ? 0 : (double)after / before):P1}</td></tr>");

    private static void RowMs(StringBuilder sb, string label, double before, double after) =>
        sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{label}</td><td>{before:F2}</td><td>{after:F2}</td><td>{LatencyChange.Describe(before, after, "×")}</td></tr>");

    private static void AgreeRow(StringBuilder sb, string label, AgreementFigures a)
    {
        if (!a.Measured)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{Enc(label)}</td><td colspan=\"3\">{Enc(a.Describe())}</td></tr>");
            return;
        }
        sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{Enc(label)}</td><td>{a.Cosine:F5}</td><td>{a.MaxAbsError:G4}</td><td>{(a.Top1Agreement is { } t ? t.ToString("P1", CultureInfo.InvariantCulture) + (a.Top1PerPosition == true ? " per position" : "") : "–")}</td></tr>");
        // Values before a data-dependent part compared instead of the outputs (a detector): the summary's sentence says which.
        if (a.ValuesCompared is not null)
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td></td><td colspan=\"3\">{Enc(a.Describe())}</td></tr>");
        else if (a.NotCompared.Count > 0)
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td></td><td colspan=\"3\">{a.OutputsCompared} output(s) compared; not compared: {Enc(string.Join(", ", a.NotCompared))}</td></tr>");
    }

    private static string Label(GroupFigures g) => $"group {g.Id}: {string.Join(", ", g.Producers.Take(3))}";

    private static string Enc(string s) => WebUtility.HtmlEncode(s);
}
