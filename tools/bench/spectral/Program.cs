using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using OnnxSlim.Spectral;
using OnnxSlim.Spectral.Numerics;

if (args.Length > 0 && args[0] == "gem")
{
    var rng = new Random(int.Parse(args[1]));
    double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
    FilterMatrix Gen(string kind, int n, int d)
    {
        var a = new double[n * d];
        switch (kind)
        {
            case "gauss": for (int i = 0; i < a.Length; i++) a[i] = Gauss(); break;
            case "lowrank":
            {
                int r = n / 4; var u = new double[n * r]; var v = new double[r * d];
                for (int i = 0; i < u.Length; i++) u[i] = Gauss(); for (int i = 0; i < v.Length; i++) v[i] = Gauss();
                for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) { double s = 0; for (int k = 0; k < r; k++) s += u[i * r + k] * v[k * d + j]; a[i * d + j] = s + 0.05 * Gauss(); }
                break;
            }
            case "dup":
            {
                int core = (int)(n * 0.6); var c = new double[core * d]; for (int i = 0; i < c.Length; i++) c[i] = Gauss();
                var rows = new List<double[]>();
                for (int i = 0; i < core; i++) rows.Add(c.AsSpan(i * d, d).ToArray());
                for (int i = core; i < n; i++) { int f = rng.Next(core); var r = new double[d]; for (int j = 0; j < d; j++) r[j] = c[f * d + j] + 0.1 * Gauss(); rows.Add(r); }
                var perm = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray();
                for (int i = 0; i < n; i++) rows[perm[i]].CopyTo(a, i * d);
                break;
            }
            case "tall": { d = Math.Max(2, n / 4); a = new double[n * d]; for (int i = 0; i < a.Length; i++) a[i] = Gauss(); break; }
        }
        return new FilterMatrix(n, d, a);
    }
    if (Environment.GetEnvironmentVariable("GEMTRACE") == "1") GemSelector.Trace = Console.WriteLine;
    double Nuc(FilterMatrix m, int[] rows) => FilterSpectrum.Compute(m.SelectRows(rows)).NuclearNorm;
    foreach (var kind in new[] { "gauss", "lowrank", "dup", "tall" })
        foreach (var n in new[] { 32, 64, 128 })
            foreach (var kf in new[] { 0.25, 0.5, 0.75 })
            {
                var m = Gen(kind, n, 2 * n); int keep = (int)(n * kf);
                var sw = Stopwatch.StartNew();
                var ex = new ExactGreedySelector().Select(m, keep); var te = sw.Elapsed.TotalMilliseconds; sw.Restart();
                var fa = new GemSelector().Select(m, keep); var tf = sw.Elapsed.TotalMilliseconds;
                var l2 = new NormSelector(FilterNorm.L2).Select(m, keep);
                double e = Nuc(m, ex);
                Console.WriteLine($"{kind,-8} n={n,4} keep={keep,4} gem/exact={Nuc(m, fa) / e:F5} l2/exact={Nuc(m, l2) / e:F5}  exact {te:F0}ms gem {tf:F1}ms");
            }
    return;
}
if (args.Length > 0 && args[0] == "fam")
{
    int n = int.Parse(args[1]), d = int.Parse(args[2]), cores = int.Parse(args[3]);
    var rng = new Random(int.Parse(args[4]));
    double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
    var core = new double[cores * d]; for (int i = 0; i < core.Length; i++) core[i] = Gauss();
    var fam = new int[n]; var a = new double[n * d];
    var perm = Enumerable.Range(0, n).ToArray();
    for (int i = n - 1; i > 0; i--) { int k = rng.Next(i + 1); (perm[i], perm[k]) = (perm[k], perm[i]); }
    for (int r = 0; r < n; r++) { int f = r < cores ? r : rng.Next(cores); fam[perm[r]] = f; for (int j = 0; j < d; j++) a[perm[r] * d + j] = core[f * d + j] + (r < cores ? 0 : 0.1 * Gauss()); }
    var m = new FilterMatrix(n, d, a);
    if (Environment.GetEnvironmentVariable("GEMTRACE") == "1") GemSelector.Trace = Console.WriteLine;
    foreach (var (bf, th, mc) in new[] { (0.25, 0.2, 8), (0.1, 0.2, 8), (0.25, 0.1, 8), (0.25, 0.2, 32), (1.0, 0.2, 8), (0.25, 0.05, 64) })
    {
        var sw = Stopwatch.StartNew();
        var kept = new GemSelector { BatchFraction = bf, ConflictThreshold = th, MaxConflicts = mc }.Select(m, cores);
        var u = kept.Select(r => fam[r]).Distinct().Count();
        Console.WriteLine($"bf {bf} th {th} mc {mc}: unique {u}/{cores} in {sw.ElapsedMilliseconds} ms");
        if (u < cores && bf == 0.25 && th == 0.2 && mc == 8)
        {
            var dupFam = kept.GroupBy(r => fam[r]).Where(g => g.Count() > 1).ToArray();
            foreach (var g in dupFam) Console.WriteLine($"  family {g.Key} kept rows {string.Join(",", g)}; all members {string.Join(",", Enumerable.Range(0, n).Where(r => fam[r] == g.Key))}");
            var lost = Enumerable.Range(0, cores).Except(kept.Select(r => fam[r])).ToArray();
            foreach (var f in lost) Console.WriteLine($"  lost family {f}: members {string.Join(",", Enumerable.Range(0, n).Where(r => fam[r] == f))}");
        }
    }
    return;
}
if (args.Length > 0 && args[0] == "tri")
{
    int n = int.Parse(args[1]); bool par = args[2] == "1";
    var rng = new Random(2);
    int cols = n + 512;
    var d = new double[n * cols];
    for (int i = 0; i < d.Length; i++) d[i] = rng.NextDouble() - 0.5;
    var m = new FilterMatrix(n, cols, d);
    for (int rep = 0; rep < 3; rep++)
    {
        var g = GramMatrix.OfRows(m, par);
        var sw = Stopwatch.StartNew();
        var tri = SymmetricTridiagonal.Reduce(g, n, par);
        Console.WriteLine($"n={n} par={par} tridiag {sw.Elapsed.TotalSeconds:F3}s");
    }
    return;
}
if (args.Length > 0 && args[0] == "check")
{
    var rng = new Random(1);
    foreach (var (r, c) in new[] { (50, 80), (80, 50), (300, 500), (500, 300), (1, 7), (7, 1) })
    {
        var d = new double[r * c];
        for (int i = 0; i < d.Length; i++) d[i] = rng.NextDouble() - 0.5;
        var fs = FilterSpectrum.Compute(new FilterMatrix(r, c, d));
        var sv = Matrix<double>.Build.Dense(c, r, d).Transpose().Svd(false).S;
        double err = 0;
        for (int i = 0; i < sv.Count; i++) err = Math.Max(err, Math.Abs(sv[i] - fs.SingularValues[i]));
        Console.WriteLine($"{r}x{c} max |dσ| = {err:E2} σ1 = {fs.Sigma1:F3}");
    }
    foreach (var n in new[] { 512, 1024, 2048 })
    {
        int cols = n + 512;
        var d = new double[n * cols];
        for (int i = 0; i < d.Length; i++) d[i] = rng.NextDouble() - 0.5;
        var m = new FilterMatrix(n, cols, d);
        var sw = Stopwatch.StartNew();
        var g = GramMatrix.OfRows(m, true);
        var tg = sw.Elapsed.TotalSeconds; sw.Restart();
        var tri = SymmetricTridiagonal.Reduce(g, n, true);
        var tt = sw.Elapsed.TotalSeconds; sw.Restart();
        var ev = tri.Eigenvalues();
        var te = sw.Elapsed.TotalSeconds; sw.Restart();
        var q = tri.FormQ(true);
        var tq = sw.Elapsed.TotalSeconds;
        // check Q T Q^T = G on a few entries
        var g2 = GramMatrix.OfRows(m, true);
        double maxErr = 0;
        for (int s = 0; s < 20; s++)
        {
            int i = rng.Next(n), j = rng.Next(n);
            double acc = 0;
            for (int k = 0; k < n; k++)
            {
                double tk = tri.Diagonal[k] * q[j * n + k];
                if (k > 0) tk += tri.OffDiagonal[k - 1] * q[j * n + k - 1];
                if (k < n - 1) tk += tri.OffDiagonal[k] * q[j * n + k + 1];
                acc += q[i * n + k] * tk;
            }
            maxErr = Math.Max(maxErr, Math.Abs(acc - g2[i * n + j]));
        }
        Console.WriteLine($"n={n} gram {tg:F3}s tridiag {tt:F3}s eig {te:F3}s Q {tq:F3}s  |QTQ'-G| {maxErr:E2} (λ1 {ev[0]:F1})");
    }
    return;
}
