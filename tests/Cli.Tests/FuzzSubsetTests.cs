using OnnxSlim.Fuzz;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Cli.Tests;

/// <summary>
/// A fixed, small part of tools/fuzz (the benchmark runs 1,000 cases and more): the cases that failed in the
/// issue 12 baseline (tools/fuzz/baseline-seed1.txt), and ten cases of each family for another seed.
/// Each runs the built CLI in its own folder and is classified as the benchmark classifies it; no failure kind
/// (internal error, raw .NET message, file left after failure, input modified, broken output, accepted invalid,
/// hang, crash...) may occur.
/// </summary>
public sealed class FuzzSubsetTests
{
    /// <summary>Seed 1 cases that failed before issue 12 was fixed, one or more per failure kind and family.</summary>
    private static readonly int[] BaselineFailures =
        [17, 27, 78, 98, 113, 126, 138, 147, 162, 172, 181, 198, 248, 256, 300, 331, 398, 422, 503, 509, 559, 631, 632, 703, 775, 784, 791, 879, 900, 917];

    private const int OtherSeed = 2;
    private const int PerFamily = 10;

    /// <summary>Case indices of the other seed start here: each case runs in a folder named by its index.</summary>
    private const int FirstOtherIndex = 1000;

    [Fact]
    public void Baseline_failures_and_a_few_cases_of_each_family_give_no_failure()
    {
        var demo = FuzzCases.DemoModel(Fixtures.RepoRoot);
        var cases = BaselineFailures.Select(i => FuzzCases.One(1, i, null, demo))
            .Concat(Enumerable.Range(0, PerFamily * FuzzCases.Families.Length).Select(i =>
                FuzzCases.One(OtherSeed, FirstOtherIndex + i, FuzzCases.Families[i % FuzzCases.Families.Length], demo)))
            .ToList();
        var results = FuzzRunner.RunAll(cases, Path.Combine(AppContext.BaseDirectory, "onnxslim.dll"), new RunOptions
        {
            Jobs = 2, Timeout = TimeSpan.FromSeconds(120), WorkDir = Fixtures.TempDir(),
        });
        var byKind = Outcome.Failures.ToDictionary(k => k, k => results.Where(r => r.Failures.ContainsKey(k)).ToList());
        string report = string.Join("\n", byKind.Where(kv => kv.Value.Count > 0).SelectMany(kv =>
            kv.Value.Select(r => $"{kv.Key}: seed {r.Case.Seed} case {r.Case.Index} [{r.Case.Family}] {r.Case.Description}\n    {r.Case.CommandLine}\n    {r.Failures[kv.Key]}")));
        Assert.True(report.Length == 0, $"fuzz failures:\n{report}");
        Assert.Equal(cases.Count, results.Count(r => Outcome.Acceptable.Contains(r.Outcome)));
    }
}
