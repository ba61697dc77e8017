namespace OnnxSlim.Fuzz;

/// <summary>The summary a run prints: counts per outcome kind and per family, and reproducers per failure kind.</summary>
public static class Report
{
    /// <summary>Prints the tables; true when any failure kind occurred.</summary>
    public static bool Print(IReadOnlyList<CaseResult> results, TextWriter o, TimeSpan elapsed, int seed, string? family, string cli)
    {
        o.WriteLine($"onnxslim-fuzz: {results.Count} cases, seed {seed}, family {family ?? "all"}, {elapsed.TotalSeconds:F0} s");
        o.WriteLine();
        var kinds = Outcome.Acceptable.Concat(Outcome.Failures).ToList();
        int Count(IEnumerable<CaseResult> rs, string kind) => Outcome.Acceptable.Contains(kind)
            ? rs.Count(r => r.Failures.Count == 0 && r.Base == kind)
            : rs.Count(r => r.Failures.ContainsKey(kind));
        o.WriteLine($"{"outcome",-26} {"cases",6}  meaning");
        foreach (var k in kinds)
        {
            int n = Count(results, k);
            o.WriteLine($"{k,-26} {n,6}  {Outcome.Explain(k)}");
        }
        int failing = results.Count(r => r.Failures.Count > 0);
        o.WriteLine($"{"cases with any failure",-26} {failing,6}  (a case may count under several failure kinds)");
        o.WriteLine();

        var families = results.Select(r => r.Case.Family).Distinct().Order().ToList();
        var shown = kinds.Where(k => Count(results, k) > 0).ToList();
        o.WriteLine($"{"family",-11} {"cases",6} " + string.Join(" ", shown.Select(k => $"{Short(k),8}")));
        foreach (var f in families)
        {
            var rs = results.Where(r => r.Case.Family == f).ToList();
            o.WriteLine($"{f,-11} {rs.Count,6} " + string.Join(" ", shown.Select(k => $"{Count(rs, k),8}")));
        }
        o.WriteLine("columns: " + string.Join(", ", shown.Select(k => $"{Short(k)} = {k}")));
        o.WriteLine();

        foreach (var kind in Outcome.Failures)
        {
            var rs = results.Where(r => r.Failures.ContainsKey(kind)).ToList();
            if (rs.Count == 0) continue;
            o.WriteLine($"== {kind}: {rs.Count} cases");
            var seen = new HashSet<string>();
            int printed = 0;
            // Up to 3 reproducers, preferring different families and mutations.
            foreach (var pass in new[] { 0, 1 })
            {
                foreach (var r in rs)
                {
                    if (printed >= 3) break;
                    string sig = pass == 0 ? $"{r.Case.Family}|{Signature(r.Case.Description)}" : $"#{r.Case.Index}";
                    if (!seen.Add(sig) || pass == 1 && seen.Contains($"printed{r.Case.Index}")) continue;
                    seen.Add($"printed{r.Case.Index}");
                    printed++;
                    o.WriteLine($"  #{r.Case.Index} [{r.Case.Family}] {r.Case.Description}");
                    o.WriteLine($"     $ {r.Case.CommandLine}");
                    o.WriteLine($"     files: {r.Case.FilesLine}");
                    o.WriteLine($"     exit {r.ExitCode}: {r.Failures[kind]}");
                }
            }
            o.WriteLine($"     (repeat one: dotnet run -c Release --project tools/fuzz -- --seed {seed}{(family is null ? "" : $" --family {family}")} --case N --keep-failures DIR)");
        }
        return failing > 0;
    }

    private static string Short(string kind) => kind switch
    {
        Outcome.Ok => "ok-0", Outcome.Refused => "ref-2", Outcome.Validation => "val-1", Outcome.Internal => "internal",
        Outcome.MultiLine => "multiln", Outcome.RawMessage => "raw-msg", Outcome.Hang => "hang", Outcome.Resource => "memory",
        Outcome.FileLeft => "file-left", Outcome.InputModified => "input-mod", Outcome.BrokenOutput => "broken-0",
        Outcome.AcceptedInvalid => "accepted", Outcome.Crash => "crash", _ => kind,
    };

    /// <summary>The mutation part of a description without numbers, so similar cases group together.</summary>
    private static string Signature(string description)
    {
        int colon = description.IndexOf("]: ", StringComparison.Ordinal);
        string s = colon >= 0 ? description[(colon + 3)..] : description;
        return new string([.. s.Where(ch => !char.IsDigit(ch))]).Split(' ').Take(3).Aggregate("", (a, b) => a + " " + b);
    }
}
