using System.Diagnostics;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Bench;

/// <summary>Per-kernel timings on one 2048×2560 group (process CPU time, robust to a busy machine).</summary>
internal static class Kernels
{
    public static void Run(bool parallel)
    {
        var proc = Process.GetCurrentProcess();
        double Cpu() { proc.Refresh(); return proc.TotalProcessorTime.TotalSeconds; }
        var rng = new Random(3);
        foreach (var (n, d) in new[] { (512, 4608), (2048, 2560), (2048, 2560) })
        {
            var a = new double[n * d];
            for (int i = 0; i < a.Length; i++) a[i] = rng.NextDouble() - 0.5;
            var m = new FilterMatrix(n, d, a);
            double c0 = Cpu(); var sw = Stopwatch.StartNew();
            var g = GramMatrix.OfRows(m, parallel);
            double c1 = Cpu(), w1 = sw.Elapsed.TotalSeconds;
            var tri = SymmetricTridiagonal.Reduce(g, n, parallel);
            double c2 = Cpu(), w2 = sw.Elapsed.TotalSeconds;
            var q = tri.FormQ(parallel);
            double c3 = Cpu(), w3 = sw.Elapsed.TotalSeconds;
            var ev = tri.Eigenvalues();
            double c4 = Cpu(), w4 = sw.Elapsed.TotalSeconds;
            Console.WriteLine($"{n}×{d} par={parallel}: gram {c1 - c0:F3}s cpu ({w1:F3} wall, {(double)n * n * d / (c1 - c0) / 1e9:F1} GFMA/s-cpu), " +
                $"reduce {c2 - c1:F3} ({w2 - w1:F3}), formQ {c3 - c2:F3} ({w3 - w2:F3}), eigenvalues {c4 - c3:F3} ({w4 - w3:F3})");
        }
    }
}
