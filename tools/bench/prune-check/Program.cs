using System.Diagnostics;
using System.Text.RegularExpressions;
using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.TestSupport;

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
Console.WriteLine("| model | groups | prunable | frozen | MACs touched / in prunable-output layers | MACs −30%-keep: measured / predicted | ORT run | check_model | merge exactness (max err / scale) | zero-removal exactness |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
foreach (var r in rows) Console.WriteLine(r);
return 0;

string Check(string path, string name)
{
    var clock = Stopwatch.StartNew();
    using var model = OnnxModel.Load(path);
    var shapes = Probe(model);
    var findClock = Stopwatch.StartNew();
    var groups = ChannelGroups.Find(model, shapes);
    long findMs = findClock.ElapsedMilliseconds;
    var tainted = Tainted(model.Graph);
    bool dataDependent = tainted.Count > 0;
    // With a data-dependent tail, costs count the static part only (its shapes do not depend on the weights).
    var staticShapes = shapes.Where(kv => !tainted.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    var cost = ModelCost.Compute(model.Graph, staticShapes);
    var terms = GroupCosts.Build(groups, staticShapes);
    var frontier = dataDependent ? Frontier(model.Graph, groups, tainted) : null;
    if (frontier is not null) Console.WriteLine($"   data-dependent tail: MACs and exactness on the static part; compared at {frontier.Count} frontier tensors, e.g. {string.Join(", ", frontier.Take(4))}");
    var full = groups.Select(g => g.Width).ToArray();
    double covered = terms.Macs.Where(t => t.OutGroup >= 0 || t.InGroup >= 0).Sum(t => t.Evaluate(full));
    double share = covered / cost.Macs;
    // Stricter: MACs of linear layers whose output channels are a prunable group.
    double byOutput = cost.Nodes.Where(n => groups.LayoutOf(n.Node.Outputs[0]) is { } l && l.Groups.Any(id => groups[id].Prunable)).Sum(n => (double)n.Macs) / cost.Macs;
    Console.WriteLine($"   groups {groups.Count}, prunable {groups.Prunable.Count()}, frozen {groups.FrozenGroups.Count()}; MACs {cost.Macs / 1e9:F3} G, params {cost.Params / 1e6:F2} M; MACs touched by prunable groups {share:P1}, in layers with prunable outputs {byOutput:P1} (probe + analysis {clock.ElapsedMilliseconds} ms, analysis alone {findMs} ms)");
    var reasons = groups.FrozenGroups.GroupBy(g => Pattern(g.Reason!)).OrderByDescending(g => g.Count()).Take(6).ToList();
    foreach (var r in reasons) Console.WriteLine($"     frozen ×{r.Count()}: {r.Key}   (e.g. {r.First().Reason})");
    var unprobed = ChannelGroups.Find(model);
    Console.WriteLine($"     without probed shapes (value_info only): {unprobed.Count} groups, {unprobed.Prunable.Count()} prunable");
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
    var prunedTainted = Tainted(pruned.Graph);
    var prunedShapes = Probe(pruned).Where(kv => !prunedTainted.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
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
        var reference = Run(frontier is null ? variant.ToBytes() : Truncate(variant, frontier), inputs);
        var result = ChannelPruner.Apply(variant, vg, keep, new RewriteOptions { Merge = true });
        var after = Run(frontier is null ? variant.ToBytes() : Truncate(variant, frontier), inputs);
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
        var reference = Run(frontier is null ? variant.ToBytes() : Truncate(variant, frontier), inputs);
        ChannelPruner.Apply(variant, vg, keep);
        zero = $"{MaxError(reference, Run(frontier is null ? variant.ToBytes() : Truncate(variant, frontier), inputs)):G2}";
        Console.WriteLine($"   zero-removal exactness: error {zero}");
    }
    Console.WriteLine($"   total {clock.Elapsed.TotalSeconds:F1} s");
    return $"| {name} | {groups.Count} | {groups.Prunable.Count()} | {groups.FrozenGroups.Count()} ({topReasons}) | {share:P1} / {byOutput:P1} | {prunedCost.Macs / 1e9:F3} G / {predicted / 1e9:F3} G (of {cost.Macs / 1e9:F3} G) | {(run.StartsWith("runs") ? "ok" : run)} | {check} | {merge} | {zero} |";
}

// Values computed from data-dependent ops (proposals, NMS, RoiAlign): their shapes and values vary with
// tiny input or weight changes, so exactness and MAC checks use only the part of the graph before them.
static HashSet<string> Tainted(Graph g)
{
    var tainted = new HashSet<string>(StringComparer.Ordinal);
    foreach (var n in g.Nodes)
        if (n.OpType is "NonZero" or "TopK" or "NonMaxSuppression" or "RoiAlign" or "If" or "Loop" or "Scan" || n.Inputs.Any(tainted.Contains))
            foreach (var o in n.Outputs) tainted.Add(o);
    return tainted;
}

// Where checks look when a model has a data-dependent tail: tensors that carry channels and leave the
// analysed part (read by an op that keeps no channels, or produced by a frozen linear layer), not tainted.
static List<string> Frontier(Graph g, ChannelGroupSet groups, HashSet<string> tainted)
{
    var result = new List<string>();
    foreach (var (value, layout) in groups.Layouts)
    {
        if (tainted.Contains(value)) continue;
        bool leaves = g.Consumers(value).Any(c => c.OpType != "Shape" && c.Outputs.All(o => groups.LayoutOf(o) is null) && !(c.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul"));
        bool frozenLinear = g.Producer(value) is { OpType: "Conv" or "ConvTranspose" or "Gemm" or "MatMul" } && layout.Groups.All(id => groups[id].Frozen);
        if (leaves || frozenLinear) result.Add(value);
    }
    return result;
}

// The model with only the given outputs and the nodes they need.
static byte[] Truncate(OnnxModel m, IReadOnlyCollection<string> outputs)
{
    var needed = new HashSet<string>(outputs, StringComparer.Ordinal);
    var keep = new HashSet<Node>();
    foreach (var n in m.Graph.Nodes.Reverse())
    {
        if (!n.Outputs.Any(needed.Contains)) continue;
        keep.Add(n);
        foreach (var input in n.Inputs) needed.Add(input);
    }
    return m.ExtractBytes(keep, [], "N", outputs, "prune-check");
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
