using System.Diagnostics;
using OnnxSlim.Pruning;
using OnnxSlim.Rewriter;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Bench;

/// <summary>
/// Float32-product Grams (<see cref="SingleGram"/>) against float64 on a real model's groups: per group whose Gram
/// costs at least 10⁹ multiply-adds, the largest entry error (relative to √(GᵢᵢGⱼⱼ)), the largest |Δσᵢ/σ₁| and both
/// times (one thread); then the --cr allocation (MACs) with every such group's spectrum from each, and whether the
/// keep counts differ. The planner itself uses float32 only from <see cref="GramMatrix.SingleMinCost"/>.
/// </summary>
internal static class SingleCheck
{
    private const double MinCost = 1e9;

    public static void Run(string path, double cr)
    {
        using var model = OnnxSlim.GraphIO.OnnxModel.Load(path);
        var analysis = ModelAnalysis.Run(model, []);
        var active = analysis.Groups.Where(g => g.Prunable).ToList();
        Console.WriteLine($"{Path.GetFileName(path)}: load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}; float32 in the planner from {GramMatrix.SingleMinCost:E0} multiply-adds");
        var exact = new Dictionary<int, FilterSpectrum>();
        var single = new Dictionary<int, FilterSpectrum>();
        foreach (var g in active)
        {
            var m = GroupMatrices.Build(analysis.Groups.Graph, g);
            double cost = (double)m.Rows * m.Rows * m.Cols;
            if (cost < MinCost || m.Rows > m.Cols || m.Streamed is not { } rows)
            {
                exact[g.Id] = single[g.Id] = FilterSpectrum.Compute(m, parallel: false);
                continue;
            }
            int n = m.Rows;
            var clock = Stopwatch.StartNew();
            var gd = new double[(long)n * n];
            Gemm.GramOfRows(rows, n, m.Cols, gd, parallel: false);
            double td = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var gs = new double[(long)n * n];
            SingleGram.GramOfRows(rows, n, m.Cols, gs, parallel: false);
            double ts = clock.Elapsed.TotalSeconds;
            double worst = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j <= i; j++)
                    worst = Math.Max(worst, Math.Abs(gd[(long)i * n + j] - gs[(long)i * n + j]) / Math.Sqrt(gd[(long)i * n + i] * gd[(long)j * n + j]));
            exact[g.Id] = Spectrum(gd, n, m.Cols, singleProducts: false);
            single[g.Id] = Spectrum(gs, n, m.Cols, singleProducts: true);
            var a = exact[g.Id];
            var b = single[g.Id];
            double dsigma = Enumerable.Range(0, a.StructuralRank).Max(i => Math.Abs(a.Normalized(i) - b.Normalized(i)));
            Console.WriteLine($"  group {g.Id,3} {n}×{m.Cols}: Gram float64 {td:F2} s, float32 products {ts:F2} s; max |ΔG|/√(GᵢᵢGⱼⱼ) {worst:E1}, max |Δσᵢ/σ₁| {dsigma:E1}");
        }
        int[] Keeps(Dictionary<int, FilterSpectrum> spectra)
        {
            var planning = analysis.Groups.Select(g => spectra.TryGetValue(g.Id, out var s)
                ? new PlanningGroup(g.Width, s, Planner.MinKeep(g.Width, 0.05), false, new PruneOptions().RoundFor(g.Width))
                : new PlanningGroup(g.Width, null, g.Width, true)).ToList();
            return new BudgetSolver().Solve(planning, analysis.GroupCosts.Macs, analysis.GroupCosts.Params, BudgetTarget.Macs, cr, 1).Keep;
        }
        var ka = Keeps(exact);
        var kb = Keeps(single);
        int differ = ka.Zip(kb).Count(p => p.First != p.Second);
        Console.WriteLine($"  --cr {cr} keep counts: {(differ == 0 ? "identical" : $"{differ} groups differ")} ([{string.Join(",", kb)}])");
        // GEM where the planner runs it on float32 products: on the streamed matrix (the planner's path) and on a stored
        // copy (float64 Gram and reduction throughout), each selection's kept nuclear norm in float64.
        foreach (var g in active)
        {
            int keep = ka[g.Id];
            var m = GroupMatrices.Build(analysis.Groups.Graph, g);
            if (keep == g.Width || !GramMatrix.UsesSingle(m)) continue;
            var clock = Stopwatch.StartNew();
            var fast = new GemSelector().Select(m, keep);
            double tf = clock.Elapsed.TotalSeconds;
            var stored = new FilterMatrix(m.Rows, m.Cols, m.Data.ToArray());
            clock.Restart();
            var reference = new GemSelector().Select(stored, keep);
            double tr = clock.Elapsed.TotalSeconds;
            double nf = FilterSpectrum.Compute(stored.SelectRows(fast)).NuclearNorm, nr = FilterSpectrum.Compute(stored.SelectRows(reference)).NuclearNorm;
            Console.WriteLine($"  group {g.Id,3} GEM keep {keep}: kept nuclear norm {nf:F4} (planner, {tf:F1} s) vs {nr:F4} (float64, {tr:F1} s), {(nf - nr) / nr:P4}; {fast.Intersect(reference).Count()} of {keep} rows in common");
        }
    }

    private static FilterSpectrum Spectrum(double[] gram, int n, int cols, bool singleProducts)
    {
        var lambda = SymmetricTridiagonal.Reduce(gram, n, parallel: false, singleProducts).Eigenvalues();
        var sv = lambda.Select(l => Math.Sqrt(Math.Max(l, 0))).OrderDescending().ToArray();
        double floor = sv[0] * Math.Sqrt(Math.Max(n, cols) * 2.220446049250313e-16); // as FilterSpectrum.Compute
        return FilterSpectrum.FromSingularValues(n, cols, [.. sv.Select(s => s < floor ? 0 : s)]);
    }
}
