using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using OnnxSlim.Spectral;

namespace OnnxSlim.Spectral.Bench;

/// <summary>Fast GEM against the exact greedy on random and structured layers up to 256 channels.</summary>
internal static class Accuracy
{
    public static void Run() => Run(new GemSelector(), new[] { 64, 128, 256 }, verbose: true);

    /// <summary>Worst ratio over a grid of GEM settings (tuning aid).</summary>
    public static void Sweep()
    {
        foreach (var bf in new[] { 0.25, 0.35, 0.5 })
            foreach (var mu in new[] { 0.3, 0.5 })
                Run(new GemSelector { BatchFraction = bf, MaxUnexplained = mu }, new[] { 64, 128 }, verbose: false, label: $"batch {bf} unexplained {mu}");
    }

    private static readonly Dictionary<(string, int, double), (FilterMatrix, double)> Cache = new();

    public static void Run(GemSelector gem, int[] sizes, bool verbose, string label = "")
    {
        var rng = new Random(5);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        FilterMatrix Make(string kind, int n)
        {
            int d = kind == "tall" ? n / 4 : 2 * n;
            var a = new double[n * d];
            if (kind == "families")
            {
                int cores = (int)(0.6 * n);
                var core = new double[cores * d];
                for (int i = 0; i < core.Length; i++) core[i] = Gauss();
                for (int r = 0; r < n; r++)
                {
                    int f = r < cores ? r : rng.Next(cores);
                    for (int j = 0; j < d; j++) a[r * d + j] = core[f * d + j] + (r < cores ? 0 : 0.1 * Gauss());
                }
            }
            else if (kind == "lowrank")
            {
                int rank = n / 4;
                var u = new double[n * rank]; var v = new double[rank * d];
                for (int i = 0; i < u.Length; i++) u[i] = Gauss();
                for (int i = 0; i < v.Length; i++) v[i] = Gauss();
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < d; j++)
                    {
                        double s = 0;
                        for (int k = 0; k < rank; k++) s += u[i * rank + k] * v[k * d + j];
                        a[i * d + j] = s + 0.05 * Gauss();
                    }
            }
            else for (int i = 0; i < a.Length; i++) a[i] = Gauss();
            return new FilterMatrix(n, d, a);
        }
        double Nuc(FilterMatrix m, int[] rows)
        {
            var s = m.SelectRows(rows);
            return Matrix<double>.Build.Dense(s.Cols, s.Rows, s.Data.ToArray()).Svd(false).S.Sum();
        }
        double worst = 1;
        foreach (var kind in new[] { "gauss", "lowrank", "families", "tall" })
            foreach (var n in new[] { 64, 128, 256 })
                foreach (var f in new[] { 0.25, 0.5, 0.75 })
                {
                    int keep = (int)(n * f);
                    var sw = Stopwatch.StartNew();
                    if (!Cache.TryGetValue((kind, n, f), out var entry))
                    {
                        var mm = Make(kind, n);
                        entry = (mm, Nuc(mm, new ExactGreedySelector().Select(mm, keep)));
                        Cache[(kind, n, f)] = entry;
                    }
                    var (m, e) = entry;
                    double te = sw.Elapsed.TotalSeconds; sw.Restart();
                    var fast = gem.Select(m, keep);
                    double tf = sw.Elapsed.TotalMilliseconds;
                    double r = Nuc(m, fast) / e;
                    worst = Math.Min(worst, r);
                    if (verbose)
                    {
                        var l2 = new NormSelector(FilterNorm.L2).Select(m, keep);
                        Console.WriteLine($"{kind,-9} {n,4}×{m.Cols,-4} keep {keep,4}: gem/exact {r:F5}  l2/exact {Nuc(m, l2) / e:F5}   exact {te,6:F2}s  gem {tf,6:F1}ms");
                    }
                }
        Console.WriteLine($"{label} worst gem/exact = {worst:F5}");
    }
}
