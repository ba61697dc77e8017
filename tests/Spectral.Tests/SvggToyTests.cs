using Xunit.Abstractions;

namespace OnnxSlim.Spectral.Tests;

/// <summary>The project page's SVGG toy (NOTES.md §1), built here with a seeded RNG.</summary>
public class SvggToyTests(ITestOutputHelper output)
{
    private static readonly int[] Widths = [64, 128, 256, 512, 512];
    private static readonly double[] Redundancy = [0.25, 0.30, 0.35, 0.40, 0.45];
    private static readonly int[] Expected = [48, 90, 166, 307, 282];

    private sealed record Layer(FilterMatrix Matrix, int[] Family, int Cores);

    private static Layer[] Build(int seed)
    {
        var syn = new Synthetic(seed);
        var layers = new Layer[Widths.Length];
        int inChannels = 16;
        for (int l = 0; l < Widths.Length; l++)
        {
            int cores = (int)Math.Round(Widths[l] * (1 - Redundancy[l]));
            // copies = core + N(0, 0.01) noise: standard deviation 0.1
            var m = syn.Families(Widths[l], inChannels * 9, cores, 0.1, out var family);
            layers[l] = new Layer(m, family, cores);
            inChannels = Widths[l];
        }
        return layers;
    }

    [Fact]
    public void ConfigurationRecoversNlAndGemKeepsOneFilterPerFamily()
    {
        var layers = Build(2024);
        Assert.Equal(Expected, layers.Select(l => l.Cores));
        Assert.Equal(893, Expected.Sum());
        Assert.Equal(1472, Widths.Sum());

        var spectra = FilterSpectrum.ComputeAll(layers.Select(l => l.Matrix).ToArray());
        var groups = spectra.Select((s, i) => new PlanningGroup(Widths[i], s, 1, false)).ToArray();
        var terms = Widths.Select((_, i) => new CostTerm(i, -1, 1.0)).ToArray(); // each group's filter count is its own term
        var plan = new BudgetSolver().Solve(groups, terms, terms, BudgetTarget.Filters, 1 - 893.0 / 1472, 1);
        output.WriteLine($"keep = [{string.Join(", ", plan.Keep)}], τ = {plan.Threshold:F4}, reduction {plan.AchievedReduction:F4}");
        Assert.Equal(Expected, plan.Keep);
        Assert.True(plan.Reachable);

        var unique = new Dictionary<string, int[]>();
        foreach (var (name, sel) in new (string, IFilterSelector)[]
                 { ("gem", new GemSelector()), ("l1", new NormSelector(FilterNorm.L1)), ("l2", new NormSelector(FilterNorm.L2)), ("random", new RandomSelector(1)) })
        {
            unique[name] = layers.Select((l, i) =>
            {
                var kept = sel.Select(l.Matrix, plan.Keep[i]);
                return kept.Select(r => l.Family[r]).Distinct().Count();
            }).ToArray();
            output.WriteLine($"{name,-6} unique families kept: [{string.Join(", ", unique[name])}] = {unique[name].Sum()} of 893");
        }
        Assert.Equal(Expected, unique["gem"]);             // 100% unique in every layer
        foreach (var baseline in new[] { "l1", "l2", "random" })
            Assert.True(unique[baseline].Sum() < 893 - 20, $"{baseline} kept {unique[baseline].Sum()} unique filters, expected clearly fewer than GEM");
    }

    [Fact]
    public void RawSingularValuesWithoutNormalisationDoNotRecoverNl()
    {
        // Why σ/σ₁: on the toy, thresholding raw σ gives the wrong split (the wide layers dominate).
        var layers = Build(2024);
        var spectra = FilterSpectrum.ComputeAll(layers.Select(l => l.Matrix).ToArray());
        var all = spectra.SelectMany((s, g) => s.SingularValues.Select(v => (v, g))).OrderByDescending(x => x.v).Take(893);
        var counts = new int[5];
        foreach (var (_, g) in all) counts[g]++;
        output.WriteLine($"raw-σ split: [{string.Join(", ", counts)}]");
        Assert.NotEqual(Expected, counts);
    }
}
