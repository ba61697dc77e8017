using System.Diagnostics;
using OnnxSlim.Spectral;
using OnnxSlim.Spectral.Bench;

// Usage: dotnet run -c Release --project tools/bench/spectral -- model FILE.onnx [--naive] [--cr 0.5]
//        dotnet run -c Release --project tools/bench/spectral -- [resnet50|fasterrcnn] [--naive] [--cr 0.5] [--groups] [--profile]
//        dotnet run -c Release --project tools/bench/spectral -- accuracy   (fast GEM vs exact greedy, up to 256 rows)
//        dotnet run -c Release --project tools/bench/spectral -- kernels [--par] | sweep
//        dotnet run -c Release --project tools/bench/spectral -- phases FILE.onnx [--cr 0.5] [--min-rows 1024] [--gem-only] [--batch F] [--tail F]   (the widest groups' Gram, reduction, eigenvalues, GEM on one thread, CPU s)
//        dotnet run -c Release --project tools/bench/spectral -- single FILE.onnx [--cr 0.5]   (float32-product Grams vs float64 on the model's large groups)
//        dotnet run -c Release --project tools/bench/spectral -- gram [--n 2617] [--rows 8960]   (the reconstruction's lower-triangle Gram, float64 vs float32 rows: CPU s, GFMA/s, largest difference)
//        dotnet run -c Release --project tools/bench/spectral -- fit [--n 4105] [--m 480] [--rows 2744] [--par]   (one fit's XᵀX, XᵀY, Cholesky and solve: CPU s, GFMA/s; DOTNET_PROCESSOR_COUNT=1 for one core)
//        dotnet run -c Release --project tools/bench/spectral -- dgemm [--m 96] [--n 4000] [--k 96] [--tb] [--reps 20]   (float64 GEMM of one shape on one thread: GFMA/s)
//        dotnet run -c Release --project tools/bench/spectral -- relu [--n 1801] [--m 192] [--rows 20000] [--serial] [--reps 3]   (the ReLU-aware re-solves' products XΘ and XᵀT on stored rows: CPU s, GFMA/s)
// model: the CLI's plan stage (Planner.Plan: spectra + allocation + GEM selection) on a real model, wall,
// CPU and peak RSS (RealModel.cs); run.sh runs it on ResNet-50 and FasterRCNN. resnet50|fasterrcnn: the
// same steps on synthetic groups shaped like those models' channel groups. --naive: MathNet's plain
// Svd() of every group instead, the reference cost. Run each mode in its own process: the peak is per process.
string mode = args.FirstOrDefault(a => !a.StartsWith("--")) ?? "resnet50";
bool naive = args.Contains("--naive");
double cr = args.SkipWhile(a => a != "--cr").Skip(1).Select(double.Parse).FirstOrDefault(0.5);
double Option(string name, double fallback) => args.SkipWhile(a => a != name).Skip(1).Select(double.Parse).FirstOrDefault(fallback);
if (Environment.GetEnvironmentVariable("GEMTRACE") == "1") GemSelector.Trace = Console.WriteLine;

if (mode == "model") { RealModel.Run(args.SkipWhile(a => a != "model").Skip(1).First(), cr, naive); return; }
if (mode == "phases") { Phases.Run(args.SkipWhile(a => a != "phases").Skip(1).First(), cr, args.SkipWhile(a => a != "--min-rows").Skip(1).Select(int.Parse).FirstOrDefault(1024),
    new GemSelector { BatchFraction = Option("--batch", 0.25), DiffuseTail = Option("--tail", new GemSelector().DiffuseTail) }, args.Contains("--gem-only")); return; }
if (mode == "single") { SingleCheck.Run(args.SkipWhile(a => a != "single").Skip(1).First(), cr); return; }
if (mode == "gram")
{
    // float64 (packed GEMM) against float32 (register blocks, float64 flushes) lower-triangle Grams of feature-major
    // chunks of 512 rows, as the reconstruction's NormalEquations forms them: CPU s and GFMA per CPU s.
    int n = (int)Option("--n", 2617), rows = (int)Option("--rows", 8960);
    const int chunk = 512;
    var rng = new Random(1);
    var x = new double[(long)n * chunk];
    var xs = new float[x.Length];
    for (int i = 0; i < x.Length; i++) xs[i] = (float)(x[i] = rng.NextDouble() - 0.3);
    var g64 = new double[(long)n * n];
    var g32 = new double[(long)n * n];
    double CpuNow() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    for (int rep = 0; rep < 2; rep++)
    {
        double c0 = CpuNow();
        for (int r = 0; r < rows; r += chunk) OnnxSlim.Spectral.Numerics.BlockedProducts.Accumulate(x, n, x, n, Math.Min(chunk, rows - r), chunk, g64, n, lowerOnly: true);
        double c1 = CpuNow();
        for (int r = 0; r < rows; r += chunk) OnnxSlim.Spectral.Numerics.BlockedProducts.Accumulate(xs, n, xs, n, Math.Min(chunk, rows - r), chunk, g32, n, lowerOnly: true);
        double c2 = CpuNow();
        double fma = (double)rows * n * n / 2 / 1e9;
        double maxRel = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j <= i; j++) maxRel = Math.Max(maxRel, Math.Abs(g64[i * n + j] - g32[i * n + j]) / Math.Sqrt(g64[i * n + i] * g64[j * n + j]));
        Console.WriteLine($"n {n} rows {rows}: float64 {c1 - c0:0.00} CPU s ({fma / (c1 - c0):0.0} GFMA/s), float32 {c2 - c1:0.00} CPU s ({fma / (c2 - c1):0.0} GFMA/s); max |Δ|/√(GiiGjj) {maxRel:0.0e0}");
        Array.Clear(g64); Array.Clear(g32);
    }
    return;
}
if (mode == "band")
{
    // Eigenvalues of a float32-product Gram (n×n of n×cols float32 rows): the one-stage float32 reduction against the
    // two-stage band path (BandReduction), process CPU s, and the largest eigenvalue difference relative to λ₁.
    int n = (int)Option("--n", 4096), cols = (int)Option("--cols", 4096);
    bool par = !args.Contains("--serial");
    var rng = new Random(5);
    var x = new double[(long)n * cols];
    for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() - 0.5) * (1 + (i / cols) % 5));
    var gram = new double[(long)n * n];
    OnnxSlim.Spectral.Numerics.Gemm.GramOfRows(x, n, cols, gram, parallel: true);
    x = null;
    double CpuNow() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    for (int rep = 0; rep < 2; rep++)
    {
        var a = (double[])gram.Clone();
        double c0 = CpuNow(); var w0 = Stopwatch.StartNew();
        var one = OnnxSlim.Spectral.Numerics.SymmetricTridiagonal.Reduce(a, n, par, singleProducts: true).Eigenvalues();
        double c1 = CpuNow(); double wOne = w0.Elapsed.TotalSeconds; w0.Restart();
        var (d, e) = OnnxSlim.Spectral.Numerics.BandReduction.Tridiagonal(gram, n, par);
        double c2 = CpuNow(); double wBand = w0.Elapsed.TotalSeconds;
        var two = OnnxSlim.Spectral.Numerics.TridiagonalEigen.Eigenvalues(d, e);
        double c3 = CpuNow();
        double maxRel = 0;
        for (int i = 0; i < n; i++) maxRel = Math.Max(maxRel, Math.Abs(one[i] - two[i]) / one[0]);
        Console.WriteLine($"n {n}: one-stage reduce+eig {c1 - c0:0.00} CPU s ({wOne:0.00} s wall); band reduce {c2 - c1:0.00} CPU s ({wBand:0.00} s wall), eig {c3 - c2:0.00}; max |Δλ|/λ₁ {maxRel:0.0e0}; load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
    }
    return;
}
if (mode == "relu")
{
    // The ReLU-aware re-solves' two float32 products on stored feature-major rows (stride = rows): predictions
    // P = XΘ a tile of 256 rows at a time (BlockedProducts.Project) and XᵀT (BlockedProducts.Accumulate): CPU s, GFMA/s.
    int n = (int)Option("--n", 1801), m = (int)Option("--m", 192), rows = (int)Option("--rows", 20000);
    const int tile = 256;
    var rng = new Random(1);
    var x = new float[(long)n * rows];
    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.3);
    var w = new float[(long)n * m];
    for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() - 0.5) * 0.01f;
    var t = new float[(long)m * rows];
    for (int i = 0; i < t.Length; i++) t[i] = (float)(rng.NextDouble() - 0.5);
    double CpuNow() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    double fma = (double)n * m * rows / 1e9;
    for (int rep = 0; rep < (int)Option("--reps", 3); rep++)
    {
        double c0 = CpuNow(); var w0 = Stopwatch.StartNew();
        int tiles = (rows + tile - 1) / tile;
        if (args.Contains("--serial"))
        {
            var p = new float[m * tile];
            for (int k = 0; k < tiles; k++) OnnxSlim.Spectral.Numerics.BlockedProducts.Project(x, n, rows, k * tile, Math.Min(tile, rows - k * tile), w, m, p, tile);
        }
        else
            Parallel.For(0, tiles, () => new float[m * tile], (k, _, p) =>
            {
                int r0 = k * tile, count = Math.Min(tile, rows - r0);
                OnnxSlim.Spectral.Numerics.BlockedProducts.Project(x, n, rows, r0, count, w, m, p, tile);
                return p;
            }, _ => { });
        double c1 = CpuNow(); double wall1 = w0.Elapsed.TotalSeconds; w0.Restart();
        var c = new double[(long)n * m];
        OnnxSlim.Spectral.Numerics.BlockedProducts.Accumulate(x, n, t, m, rows, rows, c, m, !args.Contains("--serial"));
        double c2 = CpuNow(); double wall2 = w0.Elapsed.TotalSeconds;
        double check = 0; for (int i = 0; i < c.Length; i += 97) check += c[i];
        Console.WriteLine($"n {n} m {m} rows {rows} ({fma:0.0} GFMA each): project {c1 - c0:0.00} CPU s {wall1:0.00} wall ({fma / (c1 - c0):0.0} GFMA/CPU s), XᵀT {c2 - c1:0.00} CPU s {wall2:0.00} wall ({fma / (c2 - c1):0.0}); check {check:R}");
    }
    return;
}
if (mode == "dgemm")
{
    // float64 GEMM throughput on one thread for a shape: C[m×n] += A[m×k]·B[k×n] (B transposed with --tb).
    int m = (int)Option("--m", 96), n = (int)Option("--n", 4000), k = (int)Option("--k", 96);
    bool tb = args.Contains("--tb");
    int reps = (int)Option("--reps", 20);
    var rng = new Random(1);
    var a = new double[(long)m * k]; var b = new double[(long)k * n]; var c = new double[(long)m * n];
    for (int i = 0; i < a.Length; i++) a[i] = rng.NextDouble();
    for (int i = 0; i < b.Length; i++) b[i] = rng.NextDouble();
    double CpuNow() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    for (int rep = 0; rep < 3; rep++)
    {
        double c0 = CpuNow();
        for (int r = 0; r < reps; r++) OnnxSlim.Spectral.Numerics.Gemm.Multiply(m, n, k, -1.0, a, k, false, b, tb ? k : n, tb, c, n);
        double c1 = CpuNow();
        Console.WriteLine($"{m}×{n}×{k} tb={tb}: {(double)m * n * k * reps / 1e9 / (c1 - c0):0.0} GFMA/s");
    }
    return;
}
if (mode == "fit")
{
    // One ReLU-aware fit's numerics on stored feature-major rows, on one thread (ResNet-50's layer4 conv2: n ≈ 4,100
    // features, m ≈ 480 outputs): XᵀX (lower), XᵀY, Cholesky of XᵀX + λI, the solve for m right-hand sides. CPU s, GFMA/s.
    int n = (int)Option("--n", 4105), m = (int)Option("--m", 480), rows = (int)Option("--rows", 2744);
    bool par = args.Contains("--par");
    var rng = new Random(1);
    var x = new float[(long)n * rows];
    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.3);
    var t = new float[(long)m * rows];
    for (int i = 0; i < t.Length; i++) t[i] = (float)(rng.NextDouble() - 0.5);
    double CpuNow() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
    for (int rep = 0; rep < 2; rep++)
    {
        var g = new double[(long)n * n];
        var c = new double[(long)n * m];
        double c0 = CpuNow();
        OnnxSlim.Spectral.Numerics.BlockedProducts.Accumulate(x, n, x, n, rows, rows, g, n, par, lowerOnly: true);
        double c1 = CpuNow();
        OnnxSlim.Spectral.Numerics.BlockedProducts.Accumulate(x, n, t, m, rows, rows, c, m, par);
        double c2 = CpuNow();
        double trace = 0; for (int i = 0; i < n; i++) trace += g[(long)i * n + i];
        for (int i = 0; i < n; i++) g[(long)i * n + i] += 1e-2 * trace / n;
        var l = (double[])g.Clone();
        double c3 = CpuNow();
        bool ok = OnnxSlim.Spectral.Numerics.Cholesky.Factor(l, n);
        double c4 = CpuNow();
        var th = (double[])c.Clone();
        OnnxSlim.Spectral.Numerics.Cholesky.Solve(l, n, th, m);
        double c5 = CpuNow();
        // Residual of the solve on a few columns: ‖GΘ − C‖ / ‖C‖.
        double res = 0, nc = 0;
        for (int j = 0; j < Math.Min(m, 8); j++)
            for (int i = 0; i < n; i++)
            {
                double s = 0; for (int k = 0; k < n; k++) s += g[(long)Math.Max(i, k) * n + Math.Min(i, k)] * th[(long)k * m + j];
                res += (s - c[(long)i * m + j]) * (s - c[(long)i * m + j]); nc += c[(long)i * m + j] * c[(long)i * m + j];
            }
        double gram = (double)n * n * rows / 2e9, cross = (double)n * m * rows / 1e9, chol = (double)n * n * n / 6e9, solve = (double)n * n * m / 1e9;
        Console.WriteLine($"n {n} m {m} rows {rows}: XᵀX {c1 - c0:0.00} CPU s ({gram / (c1 - c0):0.0} GFMA/s), XᵀY {c2 - c1:0.00} ({cross / (c2 - c1):0.0}), " +
            $"Cholesky {c4 - c3:0.00} ({chol / (c4 - c3):0.0}, {ok}), solve {c5 - c4:0.00} ({solve / (c5 - c4):0.0}); residual {Math.Sqrt(res / nc):0.0e0}; load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
    }
    return;
}
if (mode == "accuracy") { Accuracy.Run(); return; }
if (mode == "kernels") { Kernels.Run(args.Contains("--par")); return; }
if (mode == "sweep") { Accuracy.Sweep(); return; }
if (mode == "depthwise")
{
    // a rank-capped group: 960 depthwise 3×3 filters (960×9)
    var rng = new Random(4);
    var d = new double[960 * 9];
    for (int i = 0; i < d.Length; i++) d[i] = rng.NextDouble() - 0.5;
    var dm = new FilterMatrix(960, 9, d);
    for (int rep = 0; rep < 2; rep++) {
    var t = Stopwatch.StartNew();
    var spd = FilterSpectrum.Compute(dm);
    var dwKept = new GemSelector().Select(dm, 480);
    Console.WriteLine($"depthwise 960×9: capped {spd.IsRankCapped}, σ/σ1 min {spd.SingularValues[^1] / spd.Sigma1:F3}, GEM keep 480 in {t.ElapsedMilliseconds} ms; " +
        $"kept ‖·‖* {FilterSpectrum.Compute(dm.SelectRows(dwKept)).NuclearNorm:F3} vs l2 {FilterSpectrum.Compute(dm.SelectRows(new NormSelector(FilterNorm.L2).Select(dm, 480))).NuclearNorm:F3} vs all {spd.NuclearNorm:F3}");
    }
    return;
}

var model = mode switch
{
    "resnet50" => Shapes.ResNet50(),
    "fasterrcnn" => Shapes.FasterRcnnR50Fpn(),
    _ => throw new ArgumentException($"unknown mode '{mode}' (resnet50, fasterrcnn, accuracy, kernels, sweep, depthwise)"),
};
var sw = Stopwatch.StartNew();
var matrices = Synthesis.Build(model.Groups, seed: 1);
Console.WriteLine($"{mode}: {model.Groups.Count} groups, {model.Groups.Sum(g => g.Rows)} channels, widest {model.Groups.Max(g => g.Rows)}×{model.Groups.Max(g => g.Cols)} cols; synthesis {sw.Elapsed.TotalSeconds:F1}s (not timed)");
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated switch { true => "AVX-512", false => "no AVX-512" }}");
GC.Collect();
long baseline = Process.GetCurrentProcess().WorkingSet64;

if (naive)
{
    sw.Restart();
    var sv = NaiveSvd.Spectra(matrices);
    Console.WriteLine($"naive MathNet Svd() spectra only: {sw.Elapsed.TotalSeconds:F2}s wall, peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F0} MiB (inputs {baseline / 1048576.0:F0} MiB)");
    var check = FilterSpectrum.Compute(matrices[0]);
    Console.WriteLine($"  check group 0: σ1 MathNet {sv[0][0]:F6} vs ours {check.Sigma1:F6}");
    return;
}

if (args.Contains("--profile"))
{
    var sp = new FilterSpectrum[matrices.Length];
    double sumS = 0;
    for (int i = 0; i < matrices.Length; i++)
    {
        var t0 = Stopwatch.StartNew(); sp[i] = FilterSpectrum.Compute(matrices[i]); sumS += t0.Elapsed.TotalSeconds;
        Console.WriteLine($"  spectrum {model.Groups[i].Name,-16} {matrices[i].Rows}×{matrices[i].Cols}: {t0.Elapsed.TotalMilliseconds:F0} ms");
    }
    var gr = model.Groups.Select((g, i) => new PlanningGroup(g.Rows, sp[i], Math.Max(1, (int)Math.Ceiling(0.05 * g.Rows)), false)).ToArray();
    var pl = new BudgetSolver().Solve(gr, model.Macs, model.Params, BudgetTarget.Macs, cr, 1);
    double sumG = 0;
    for (int i = 0; i < matrices.Length; i++)
    {
        var t0 = Stopwatch.StartNew(); new GemSelector().Select(matrices[i], pl.Keep[i]); sumG += t0.Elapsed.TotalSeconds;
        Console.WriteLine($"  gem {model.Groups[i].Name,-16} {matrices[i].Rows}×{matrices[i].Cols} keep {pl.Keep[i]}: {t0.Elapsed.TotalMilliseconds:F0} ms");
    }
    Console.WriteLine($"sequential sums: spectra {sumS:F2}s gem {sumG:F2}s");
    return;
}
var proc = Process.GetCurrentProcess();
TimeSpan Cpu() { proc.Refresh(); return proc.TotalProcessorTime; }
var cpu0 = Cpu();
var total = Stopwatch.StartNew();
sw.Restart();
var spectra = FilterSpectrum.ComputeAll(matrices);
double tSpectra = sw.Elapsed.TotalSeconds;
var cpu1 = Cpu();
sw.Restart();
var groups = model.Groups.Select((g, i) => new PlanningGroup(g.Rows, spectra[i], Math.Max(1, (int)Math.Ceiling(0.05 * g.Rows)), false)).ToArray();
var plan = new BudgetSolver().Solve(groups, model.Macs, model.Params, BudgetTarget.Macs, cr, 1);
double tPlan = sw.Elapsed.TotalSeconds;
sw.Restart();
var kept = FilterSelectors.SelectAll(new GemSelector(), matrices, plan.Keep);
double tSelect = sw.Elapsed.TotalSeconds;
double tTotal = total.Elapsed.TotalSeconds;
var cpu2 = Cpu();
long peak = Process.GetCurrentProcess().PeakWorkingSet64;

Console.WriteLine($"spectra {tSpectra:F2}s + allocation {tPlan:F3}s + GEM selection {tSelect:F2}s = {tTotal:F2}s wall");
Console.WriteLine($"cpu time: spectra {(cpu1 - cpu0).TotalSeconds:F2}s, allocation+selection {(cpu2 - cpu1).TotalSeconds:F2}s, total {(cpu2 - cpu0).TotalSeconds:F2}s (load average at start {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
Console.WriteLine($"peak working set {peak / 1048576.0:F0} MiB (inputs alone {baseline / 1048576.0:F0} MiB)");
Console.WriteLine($"--cr {cr} macs: achieved {plan.AchievedReduction:P2} (params {plan.ParamsReduction:P1}, filters {plan.FiltersReduction:P1}), τ = {plan.Threshold:F4}, reachable {plan.Reachable}");
Console.WriteLine($"kept {plan.Keep.Sum()} of {groups.Sum(g => g.Width)} channels; rank-capped groups: {plan.RankCapped.Count(c => c)}");
for (int i = 0; i < groups.Length; i++)
    if (kept[i].Length != plan.Keep[i]) throw new InvalidOperationException($"group {i}: selection size {kept[i].Length} != {plan.Keep[i]}");
if (args.Contains("--groups"))
    for (int i = 0; i < groups.Length; i++)
        Console.WriteLine($"  {model.Groups[i].Name,-16} {model.Groups[i].Rows,5}×{model.Groups[i].Cols,-5} keep {plan.Keep[i],5}  σ1 {spectra[i].Sigma1,9:F2}  rank90 {spectra[i].EffectiveRank(0.9),5}");
