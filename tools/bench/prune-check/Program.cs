using System.Diagnostics;
using System.Text.RegularExpressions;
using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;

// prune-check [MODEL.onnx ...] [--out DIR] [--shape NAME=D1,D2,...]
// For each model: channel groups (found / prunable / frozen, top freeze reasons), the share of MACs that
// prunable groups cover, a random 70% keep (saved, run in ONNX Runtime, checked by python3-onnx's
// check_model with full_check, MACs vs the cost model's prediction), and two exactness checks:
// removed filters made positive multiples of kept ones with merge on, and zeroed filters removed plainly.
string cache = Environment.GetEnvironmentVariable("ONNXSLIM_CACHE") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "onnxslim");
var models = new List<string>();
var overrides = new List<string>();
string outDir = Path.Combine(Path.GetTempPath(), "prune-check");
for (int a = 0; a < args.Length; a++)
{
    if (args[a] == "--out") outDir = args[++a];
    else if (args[a] == "--shape") overrides.Add(args[++a]);
    else models.Add(args[a]);
}
if (models.Count == 0)
    models.AddRange(new[] { "resnet50", "mobilenet_v2", "vgg16_bn", "googlenet", "densenet121", "fasterrcnn", "ppocr_det" }
        .Select(n => Path.Combine(cache, "models", n + ".onnx")).Where(File.Exists));
Directory.CreateDirectory(outDir);

var rows = new List<string>();
foreach (var path in models)
{
    string name = Path.GetFileNameWithoutExtension(path);
    Console.WriteLine($"== {name}");
    try { rows.Add(Check(path, name)); }
    catch (Exception e) { Console.WriteLine($"   FAILED: {e.GetType().Name}: {e.Message}"); rows.Add($"| {name} | failed: {e.Message.Split('\n')[0]} |"); }
    GC.Collect();
}
Console.WriteLine();
Console.WriteLine("| model | groups | prunable | frozen | prunable MAC share | MACs −30%-keep: measured / predicted | ORT run | check_model | merge exactness (max err / scale) | zero-removal exactness |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
foreach (var r in rows) Console.WriteLine(r);
return 0;

string Check(string path, string name)
{
    var clock = Stopwatch.StartNew();
    using var model = OnnxModel.Load(path);
    var shapes = Probe(model);
    var groups = ChannelGroups.Find(model, shapes);
    var cost = ModelCost.Compute(model.Graph, shapes);
    var terms = GroupCosts.Build(groups, shapes);
    var full = groups.Select(g => g.Width).ToArray();
    double covered = terms.Macs.Where(t => t.OutGroup >= 0 || t.InGroup >= 0).Sum(t => t.Evaluate(full));
    double share = covered / cost.Macs;
    Console.WriteLine($"   groups {groups.Count}, prunable {groups.Prunable.Count()}, frozen {groups.FrozenGroups.Count()}; MACs {cost.Macs / 1e9:F3} G, params {cost.Params / 1e6:F2} M; prunable share {share:P1} (analysis {clock.ElapsedMilliseconds} ms)");
    var reasons = groups.FrozenGroups.GroupBy(g => Pattern(g.Reason!)).OrderByDescending(g => g.Count()).Take(6).ToList();
    foreach (var r in reasons) Console.WriteLine($"     frozen ×{r.Count()}: {r.Key}   (e.g. {r.First().Reason})");
    foreach (var note in terms.Notes.Take(3)) Console.WriteLine($"     cost note: {note}");
    string topReasons = string.Join("; ", reasons.Take(3).Select(r => $"{r.Count()}× {r.Key}"));

    // Random 70% of every prunable group.
    var keep = RandomKeep(groups, 0.7, new Random(1));
    var kept = groups.Select(g => keep.TryGetValue(g.Id, out var k) ? k.Length : g.Width).ToArray();
    byte[] originalBytes = model.ToBytes();
    var inputs = Inputs(originalBytes);
    using var pruned = OnnxModel.FromBytes(originalBytes, model.Directory);
    var prunedGroups = ChannelGroups.Find(pruned, shapes);
    ChannelPruner.Apply(pruned, prunedGroups, keep);
    string outPath = Path.Combine(outDir, name + ".pruned.onnx");
    pruned.Save(outPath);
    string run;
    try
    {
        using var runner = new ModelRunner(File.ReadAllBytes(outPath));
        var outputs = runner.Run(inputs);
        run = "runs: " + string.Join(", ", outputs.Select(o => $"{o.Name}{NamedTensor.FormatShape(o.Shape)}"));
    }
    catch (Exception e) { run = "FAILS: " + e.Message.Split('\n')[0]; }
    var prunedShapes = Probe(pruned);
    var prunedCost = ModelCost.Compute(pruned.Graph, prunedShapes);
    double predicted = GroupCosts.Evaluate(terms.Macs, kept);
    Console.WriteLine($"   70% keep: MACs {prunedCost.Macs / 1e9:F3} G measured, {predicted / 1e9:F3} G predicted ({1 - prunedCost.Macs / (double)cost.Macs:P1} removed); params {prunedCost.Params / 1e6:F2} M; {run}");
    string check = CheckModel(outPath);
    Console.WriteLine($"   check_model(full_check): {check}");

    // Exactness with merge: removed filters made positive multiples of kept ones.
    string merge;
    using (var variant = OnnxModel.FromBytes(originalBytes, model.Directory))
    {
        var vg = ChannelGroups.Find(variant, shapes);
        int failed = RedundancyInjector.MakeMultiples(vg, keep, new Random(2));
        var reference = Run(variant.ToBytes(), inputs);
        var result = ChannelPruner.Apply(variant, vg, keep, new PruneOptions { Merge = true });
        var after = Run(variant.ToBytes(), inputs);
        double error = MaxError(reference, after);
        merge = $"{error:G2} ({result.Merged}/{result.Removed} merged" + (failed > 0 ? $", {failed} not injectable" : "") + ")";
        Console.WriteLine($"   merge exactness: error {merge}");
    }
    // Exactness of plain removal of zeroed filters.
    string zero;
    using (var variant = OnnxModel.FromBytes(originalBytes, model.Directory))
    {
        var vg = ChannelGroups.Find(variant, shapes);
        foreach (var (id, k) in keep) RedundancyInjector.ZeroChannels(vg, id, Enumerable.Range(0, vg[id].Width).Except(k));
        var reference = Run(variant.ToBytes(), inputs);
        ChannelPruner.Apply(variant, vg, keep);
        zero = $"{MaxError(reference, Run(variant.ToBytes(), inputs)):G2}";
        Console.WriteLine($"   zero-removal exactness: error {zero}");
    }
    Console.WriteLine($"   total {clock.Elapsed.TotalSeconds:F1} s");
    return $"| {name} | {groups.Count} | {groups.Prunable.Count()} | {groups.FrozenGroups.Count()} ({topReasons}) | {share:P1} | {prunedCost.Macs / 1e9:F3} G / {predicted / 1e9:F3} G (of {cost.Macs / 1e9:F3} G) | {(run.StartsWith("runs") ? "ok" : run)} | {check} | {merge} | {zero} |";
}

Dictionary<string, long[]> Probe(OnnxModel m)
{
    var names = ChannelGroups.ShapeQueries(m.Graph).Concat(ModelCost.RequiredValues(m.Graph)).Distinct().ToList();
    return ShapeProbe.Run(m, names, overrides);
}

List<NamedTensor> Inputs(byte[] bytes)
{
    using var runner = new ModelRunner(bytes);
    return InputGenerator.Generate(runner.Inputs, InputShapes.Resolve(runner.Inputs, overrides), 7);
}

IReadOnlyList<NamedTensor> Run(byte[] bytes, List<NamedTensor> inputs)
{
    using var runner = new ModelRunner(bytes);
    return runner.Run(inputs);
}

// Max |a − b| over an output divided by max |a| of that output, worst over outputs of equal shape.
static string MaxErrorText(double e) => e.ToString("G2");
static double MaxError(IReadOnlyList<NamedTensor> a, IReadOnlyList<NamedTensor> b)
{
    double worst = 0;
    foreach (var x in a)
    {
        var y = b.FirstOrDefault(o => o.Name == x.Name);
        if (y is null || !x.Shape.SequenceEqual(y.Shape)) return double.PositiveInfinity;
        float[] u = x.AsFloats(), v = y.AsFloats();
        double scale = 0, error = 0;
        for (int i = 0; i < u.Length; i++) { scale = Math.Max(scale, Math.Abs(u[i])); error = Math.Max(error, Math.Abs(u[i] - v[i])); }
        if (u.Length > 0) worst = Math.Max(worst, error / Math.Max(scale, 1e-30));
    }
    return worst;
}

static Dictionary<int, int[]> RandomKeep(ChannelGroupSet groups, double fraction, Random random)
{
    var keep = new Dictionary<int, int[]>();
    foreach (var g in groups.Prunable)
    {
        if (g.Width < 2) continue;
        int count = Math.Clamp((int)Math.Round(g.Width * fraction), 1, g.Width - 1);
        keep[g.Id] = [.. Enumerable.Range(0, g.Width).OrderBy(_ => random.Next()).Take(count).Order()];
    }
    return keep;
}

static string Pattern(string reason) => Regex.Replace(Regex.Replace(reason, "'[^']*'", "'…'"), @"\d+", "N");

static string CheckModel(string path)
{
    var psi = new ProcessStartInfo("/usr/bin/python3", ["-c", $"import onnx; onnx.checker.check_model('{path}', full_check=True); print('ok')"])
    { RedirectStandardOutput = true, RedirectStandardError = true };
    using var p = Process.Start(psi)!;
    string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
    p.WaitForExit();
    return p.ExitCode == 0 && stdout.Contains("ok") ? "ok" : "FAILS: " + stderr.Trim().Split('\n').LastOrDefault();
}
