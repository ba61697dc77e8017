using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.Runtime;

// Fidelity of pruned PP-OCRv4 models on rendered data (tools/data/make_ocr_data.sh), for issue 10.
//   ocr-bench rec ORIGINAL.onnx [PRUNED.onnx ...] --data DIR [--set rec_test] [--keys FILE] [--batch 64]
//             [--limit N] [--show K] [--predictions FILE] [--threads N] [--json FILE]
//     line accuracy (exact match after CTC greedy decoding, spaces ignored as in PaddleOCR's RecMetric: the labels
//     have none, and the model reads margins and gaps around punctuation as spaces) and mean normalised edit
//     distance per model;
//     "agree" = lines decoded exactly as the original decodes them. --predictions writes the original's reads.
//   ocr-bench det ORIGINAL.onnx [PRUNED.onnx ...] --data DIR [--set det_test] [--thresh 0.3] [--batch 4]
//             [--limit N] [--dump FILE.npy] [--threads N] [--json FILE]
//     IoU of each model's binary text mask (probability > thresh) with the original's, pooled over all pixels
//     of the set, and the lowest per-page IoU.
// DIR is the data root (…/onnxslim/data/ppocr): DIR/SET/x.npy, DIR/SET/labels.txt, DIR/ppocr_keys_v1.txt.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
Console.OutputEncoding = Encoding.UTF8;

if (args.Length < 2 || args[0] is not ("rec" or "det"))
{
    Console.Error.WriteLine("usage: ocr-bench rec|det ORIGINAL.onnx [PRUNED.onnx ...] --data DIR [options]");
    return 2;
}
string mode = args[0];
var models = new List<string>();
var options = new Dictionary<string, string>();
for (int i = 1; i < args.Length; i++)
{
    if (args[i].StartsWith("--", StringComparison.Ordinal))
    {
        if (i + 1 >= args.Length) { Console.Error.WriteLine($"ocr-bench: {args[i]} needs a value"); return 2; }
        options[args[i]] = args[++i];
    }
    else models.Add(args[i]);
}
string? Opt(string name) => options.GetValueOrDefault(name);
string cache = Environment.GetEnvironmentVariable("ONNXSLIM_CACHE") is { Length: > 0 } c ? c
    : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "onnxslim");
string data = Opt("--data") ?? Path.Combine(cache, "data", "ppocr");
string set = Opt("--set") ?? (mode == "rec" ? "rec_test" : "det_test");
int threads = int.Parse(Opt("--threads") ?? "0");
int limit = int.Parse(Opt("--limit") ?? "0");
string? json = Opt("--json");
foreach (string m in models)
    if (!File.Exists(m)) { Console.Error.WriteLine($"ocr-bench: model not found: {m}"); return 2; }

var x = NpyFile.Read(Path.Combine(data, set, "x.npy"));
if (x.Floats is null || x.Shape.Length != 4) { Console.Error.WriteLine("ocr-bench: x.npy must be float32 [N,3,H,W]"); return 2; }
int n = (int)x.Shape[0];
if (limit > 0) n = Math.Min(n, limit);
long sampleSize = x.Shape[1] * x.Shape[2] * x.Shape[3];

// Runs one model over the first n samples in batches; hands each batch's output to sink(start, output).
double RunModel(string path, int batch, Action<int, NamedTensor> sink)
{
    using var runner = new ModelRunner(File.ReadAllBytes(path), Provider.Cpu, threads);
    string input = runner.Inputs.Keys.First();
    var watch = Stopwatch.StartNew();
    for (int start = 0; start < n; start += batch)
    {
        int b = Math.Min(batch, n - start);
        var slice = new float[b * sampleSize];
        Array.Copy(x.Floats!, start * sampleSize, slice, 0, slice.Length);
        long[] shape = [b, x.Shape[1], x.Shape[2], x.Shape[3]];
        var outputs = runner.Run([new NamedTensor(input, TensorElementType.Float, shape, slice)]);
        sink(start, outputs[0]);
    }
    return watch.Elapsed.TotalSeconds;
}

var results = new List<Dictionary<string, object>>();
if (mode == "rec")
{
    string keysPath = Opt("--keys") ?? FirstExisting(Path.Combine(data, "ppocr_keys_v1.txt"), Path.Combine(cache, "models", "ppocr_keys_v1.txt"));
    // CTC classes: 0 = blank, 1..K = dictionary lines, K+1 = space (PaddleOCR's use_space_char).
    var classes = new List<string> { "" };
    classes.AddRange(File.ReadAllText(keysPath, Encoding.UTF8).Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0));
    classes.Add(" ");
    string[] labels = File.ReadAllLines(Path.Combine(data, set, "labels.txt"), Encoding.UTF8);
    if (labels.Length < n) { Console.Error.WriteLine($"ocr-bench: {labels.Length} labels for {n} lines"); return 2; }
    int batch = int.Parse(Opt("--batch") ?? "64");
    int show = int.Parse(Opt("--show") ?? "0");
    string[]? reference = null;
    int[]? referenceSteps = null;
    foreach (string model in models)
    {
        var decoded = new string[n];
        int[]? steps = null;
        double crossEntropy = 0;
        long stepAgree = 0, stepCount = 0;
        double seconds = RunModel(model, batch, (start, output) =>
        {
            int b = (int)output.Shape[0], t = (int)output.Shape[1], k = (int)output.Shape[2];
            if (k != classes.Count) throw new InvalidOperationException($"{model}: {k} classes, dictionary gives {classes.Count}");
            var probs = (float[])output.Data;
            for (int i = 0; i < b; i++) decoded[start + i] = CtcGreedy(probs.AsSpan(i * t * k, t * k), t, k, classes).Replace(" ", "");
            // Per time step: the argmax, its agreement with the original's, and −log of the original's argmax class here.
            steps ??= new int[n * t];
            for (int i = 0; i < b; i++)
                for (int s = 0; s < t; s++)
                {
                    var p = probs.AsSpan((i * t + s) * k, k);
                    int best = 0;
                    for (int c = 1; c < k; c++) if (p[c] > p[best]) best = c;
                    int at = (start + i) * t + s;
                    steps[at] = best;
                    if (referenceSteps is not null)
                    {
                        stepCount++;
                        if (referenceSteps[at] == best) stepAgree++;
                        crossEntropy -= Math.Log(Math.Max(p[referenceSteps[at]], 1e-12));
                    }
                }
        });
        referenceSteps ??= steps;
        if (reference is null && Opt("--predictions") is { } predictions) File.WriteAllLines(predictions, decoded, new UTF8Encoding(false));
        reference ??= decoded;
        int exact = 0, agree = 0;
        double ned = 0;
        int shown = 0;
        for (int i = 0; i < n; i++)
        {
            if (decoded[i] == labels[i]) exact++;
            else if (shown++ < show) Console.Error.WriteLine($"  {Path.GetFileName(model)} #{i}: '{labels[i]}' read as '{decoded[i]}'");
            if (decoded[i] == reference[i]) agree++;
            ned += NormalisedEditDistance(decoded[i], labels[i]);
        }
        results.Add(new()
        {
            ["model"] = model, ["lines"] = n, ["line_accuracy"] = 100.0 * exact / n, ["mean_ned"] = ned / n,
            ["agree_with_original"] = 100.0 * agree / n, ["seconds"] = seconds,
            ["step_agree"] = stepCount == 0 ? 100.0 : 100.0 * stepAgree / stepCount, ["step_ce"] = stepCount == 0 ? 0.0 : crossEntropy / stepCount,
        });
    }
    Console.WriteLine($"rec: {n} lines of {set} ({Path.Combine(data, set)}), CTC greedy decoding, exact-match line accuracy");
    PrintTable(["model", "line acc %", "Δ pt", "mean NED", "agree %", "s", "step agree %", "step CE"], results.Select((r, i) => new[]
    {
        Path.GetFileName((string)r["model"]), F((double)r["line_accuracy"], 2),
        i == 0 ? "" : F((double)r["line_accuracy"] - (double)results[0]["line_accuracy"], 2),
        F((double)r["mean_ned"], 4), F((double)r["agree_with_original"], 1), F((double)r["seconds"], 1),
        F((double)r["step_agree"], 3), F((double)r["step_ce"], 5),
    }));
}
else
{
    float thresh = float.Parse(Opt("--thresh") ?? "0.3");
    int batch = int.Parse(Opt("--batch") ?? "4");
    bool[]? reference = null;
    long pagePixels = 0;
    float[]? dump = Opt("--dump") is null ? null : new float[n * x.Shape[2] * x.Shape[3]];
    foreach (string model in models)
    {
        bool[] mask = [];
        double seconds = RunModel(model, batch, (start, output) =>
        {
            var probs = (float[])output.Data;
            long per = output.Shape[1] * output.Shape[2] * output.Shape[3];
            if (output.Shape[1] != 1) throw new InvalidOperationException($"{model}: output has {output.Shape[1]} channels, expected 1");
            if (mask.Length == 0) { pagePixels = per; mask = new bool[n * per]; }
            for (long j = 0; j < probs.Length; j++) mask[start * per + j] = probs[j] > thresh;
            if (dump is not null && reference is null) Array.Copy(probs, 0, dump, start * per, probs.Length);
        });
        long positive = mask.LongCount(v => v);
        var row = new Dictionary<string, object>
        {
            ["model"] = model, ["pages"] = n, ["mask_fraction"] = (double)positive / mask.Length, ["seconds"] = seconds,
        };
        if (reference is null)
        {
            reference = mask;
            if (dump is not null) NpyFile.WriteFloats(Opt("--dump")!, [n, 1, x.Shape[2], x.Shape[3]], dump);
        }
        else
        {
            long inter = 0, union = 0;
            double minIou = 1;
            int minPage = -1;
            for (int p = 0; p < n; p++)
            {
                long pi = 0, pu = 0;
                for (long j = p * pagePixels; j < (p + 1) * pagePixels; j++)
                {
                    bool a = reference[j], b = mask[j];
                    if (a && b) pi++;
                    if (a || b) pu++;
                }
                inter += pi; union += pu;
                double iou = pu == 0 ? 1 : (double)pi / pu;
                if (minPage < 0 || iou < minIou) { minIou = iou; minPage = p; }
            }
            row["iou"] = union == 0 ? 1.0 : (double)inter / union;
            row["min_page_iou"] = minIou;
            row["min_page"] = minPage;
        }
        results.Add(row);
    }
    Console.WriteLine($"det: {n} pages of {set} ({Path.Combine(data, set)}), mask = probability > {thresh}, IoU with the original's mask");
    PrintTable(["model", "IoU (pooled)", "min page IoU", "page", "text px %", "s"], results.Select(r => new[]
    {
        Path.GetFileName((string)r["model"]), r.TryGetValue("iou", out var v) ? F((double)v, 4) : "(original)",
        r.TryGetValue("min_page_iou", out var m) ? F((double)m, 4) : "", r.TryGetValue("min_page", out var pg) ? pg.ToString()! : "",
        F(100 * (double)r["mask_fraction"], 2), F((double)r["seconds"], 1),
    }));
}
if (json is not null)
{
    string text = JsonSerializer.Serialize(new Dictionary<string, object> { ["mode"] = mode, ["set"] = set, ["data"] = data, ["models"] = results },
        new JsonSerializerOptions { WriteIndented = true });
    if (json == "-") Console.WriteLine(text); else File.WriteAllText(json, text);
}
return 0;

static string CtcGreedy(ReadOnlySpan<float> probs, int t, int k, List<string> classes)
{
    var sb = new StringBuilder();
    int previous = -1;
    for (int step = 0; step < t; step++)
    {
        var row = probs.Slice(step * k, k);
        int best = 0;
        for (int j = 1; j < k; j++) if (row[j] > row[best]) best = j;
        if (best != 0 && best != previous) sb.Append(classes[best]);
        previous = best;
    }
    return sb.ToString();
}

// Levenshtein distance over Unicode code points, divided by the longer length (PaddleOCR's norm_edit_dis).
static double NormalisedEditDistance(string a, string b)
{
    int[] s = [.. a.EnumerateRunes().Select(r => r.Value)], u = [.. b.EnumerateRunes().Select(r => r.Value)];
    if (s.Length == 0 && u.Length == 0) return 0;
    var prev = new int[u.Length + 1];
    var cur = new int[u.Length + 1];
    for (int j = 0; j <= u.Length; j++) prev[j] = j;
    for (int i = 1; i <= s.Length; i++)
    {
        cur[0] = i;
        for (int j = 1; j <= u.Length; j++)
            cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (s[i - 1] == u[j - 1] ? 0 : 1));
        (prev, cur) = (cur, prev);
    }
    return (double)prev[u.Length] / Math.Max(s.Length, u.Length);
}

static string FirstExisting(params string[] paths) => paths.FirstOrDefault(File.Exists)
    ?? throw new FileNotFoundException($"dictionary not found (tried {string.Join(", ", paths)}); run tools/models/fetch_ppocr.sh keys");

static string F(double v, int digits) => v.ToString("F" + digits, CultureInfo.InvariantCulture);

static void PrintTable(string[] header, IEnumerable<string[]> rows)
{
    var all = new List<string[]> { header };
    all.AddRange(rows);
    int[] width = [.. Enumerable.Range(0, header.Length).Select(c => all.Max(r => r[c].Length))];
    foreach (var r in all)
        Console.WriteLine(string.Join("  ", r.Select((cell, c) => c == 0 ? cell.PadRight(width[c]) : cell.PadLeft(width[c]))).TrimEnd());
}
