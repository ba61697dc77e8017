using System.Diagnostics;
using OnnxSlim.Pruning;
using OnnxSlim.Rewriter;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Bench;

/// <summary>
/// The plan's expensive steps on a real model's widest groups, one at a time on one thread (process CPU time, robust
/// to a busy machine): Gram, tridiagonal reduction, eigenvalues, and GEM at the --cr keep count (with GEMTRACE=1 its
/// factorisations and epochs). Groups with at least <c>--min-rows</c> rows (default 1024).
/// </summary>
internal static class Phases
{
    public static void Run(string path, double cr, int minRows, GemSelector gemSelector, bool gemOnly)
    {
        using var model = OnnxSlim.GraphIO.OnnxModel.Load(path);
        var analysis = ModelAnalysis.Run(model, []);
        var plan = Planner.Configure(analysis, new PruneOptions { Ratio = cr });
        foreach (var m in plan.Matrices) m.ReleaseCache();
        var proc = Process.GetCurrentProcess();
        double Cpu() { proc.Refresh(); return proc.TotalProcessorTime.TotalSeconds; }
        Console.WriteLine($"{Path.GetFileName(path)}: load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}; one thread");
        for (int i = 0; i < plan.Active.Count; i++)
        {
            var g = plan.Active[i];
            if (g.Width < minRows) continue;
            int keep = plan.Allocation.Keep[g.Id];
            if (gemOnly && keep == g.Width) continue;
            IdleCores.Occupy(() => IdleCores.Occupy(() =>
            {
                var m = GroupMatrices.Build(analysis.Groups.Graph, g);
                bool single = GramMatrix.UsesSingle(m); // before GEM's result is read back (that stores the matrix)
                double c0 = Cpu();
                var gram = GramMatrix.OfRows(m, parallel: true);
                double c1 = Cpu();
                var tri = SymmetricTridiagonal.Reduce(gram, m.Rows, parallel: true, single);
                double c2 = Cpu();
                tri.Eigenvalues();
                double c3 = Cpu();
                WorkArrays.Return(gram);
                string gem = "";
                if (keep < m.Rows)
                {
                    double g0 = Cpu();
                    var kept = gemSelector.Select(m, keep);
                    gem = $", GEM keep {keep} {Cpu() - g0:F2} s (own Gram and reduction included), kept nuclear norm {FilterSpectrum.Compute(m.SelectRows(kept)).NuclearNorm:F4}";
                }
                Console.WriteLine($"  group {g.Id} {m.Rows}×{m.Cols} single {single}: Gram {c1 - c0:F2} s, reduce {c2 - c1:F2} s, eigenvalues {c3 - c2:F2} s{gem}");
            }));
        }
    }
}
