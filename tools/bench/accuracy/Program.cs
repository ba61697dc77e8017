using System.Diagnostics;
using System.Globalization;
using OnnxSlim.Cli.Pipeline;
using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Runtime.Recovery;
using OnnxSlim.Spectral;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

// Accuracy of pruned Fashion-MNIST ResNets on the 10,000 test images, per pruning variant and MACs
// reduction: the table of issue 6. Runs the library pipeline in-process (analyse → plan → rewrite →
// reconstruct), the same calls the CLI makes. Variants:
//   uniform-l2        uniform allocation, L2 filter norms, plain slicing
//   sliming           SLIMING allocation and GEM selection, plain slicing
//   data-free         sliming + the rewriter's data-free compensation (PruneOptions.DataFree)
//   calib             what the CLI does with --calib: refit ranking (channels ranked, and the sliming
//                     threshold applied, on the output error of the re-fitted readers), data-free
//                     compensation, then calibration reconstruction on calib_x.npy (256 training images)
//   gem-calib         data-free + calibration reconstruction, GEM on weight spectra (--criterion gem --calib)
//   uniform-l2-calib  uniform-l2 + calibration reconstruction
//   uniform-refit-calib  uniform allocation, refit ranking, plain slicing + calibration reconstruction
//   dotnet run -c Release -- [--fixtures DIR] [--models fm_resnet_fused,fm_resnet_bn] [--ratios 0.3,0.5,0.7]
//                            [--test-images N] [--variants uniform-l2,sliming,data-free,calib,...] [--verbose]
//                            [--ridge R] [--samples S] [--relu-iterations K] [--no-residual] [--per-image-classifier] [--refit-downstream]
//                            [--max-batch N] [--cache-mb M] [--round-to auto|N]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
string fixtures = Option("--fixtures") ?? FindFixtures();
string[] models = (Option("--models") ?? "fm_resnet_fused,fm_resnet_bn").Split(',');
double[] ratios = [.. (Option("--ratios") ?? "0.3,0.5,0.7").Split(',').Select(double.Parse)];
int testImages = int.Parse(Option("--test-images") ?? "10000");
string[] variants = (Option("--variants") ?? "uniform-l2,sliming,data-free,calib").Split(',');
bool verbose = args.Contains("--verbose");
var reconstruction = new ReconstructionOptions
{
    Ridge = double.Parse(Option("--ridge") ?? "1e-3"),
    SamplePositions = int.Parse(Option("--samples") ?? "20000"),
    ReluIterations = int.Parse(Option("--relu-iterations") ?? "4"),
    ResidualTargets = !args.Contains("--no-residual"),
    PerPositionClassifier = !args.Contains("--per-image-classifier"),
    RefitDownstream = args.Contains("--refit-downstream"),
    MaxBatch = int.Parse(Option("--max-batch") ?? "64"),
    CacheBudgetBytes = long.Parse(Option("--cache-mb") ?? "1024") << 20,
    Log = verbose ? line => Console.Error.WriteLine("  " + line) : null,
};

var testX = NpyFile.Read(Path.Combine(fixtures, "test_x.npy"));
var testY = NpyFile.Read(Path.Combine(fixtures, "test_y.npy")).Longs!;
var calibX = NpyFile.Read(Path.Combine(fixtures, "calib_x.npy"));
var calibration = new NamedTensor("input", TensorElementType.Float, calibX.Shape, calibX.Floats!);
testImages = Math.Min(testImages, (int)testX.Shape[0]);

var rows = new List<string>();
double cpuSeconds = 0;
var timings = new List<string>();
foreach (string name in models)
{
    string path = Path.Combine(fixtures, name + ".onnx");
    using var original = OnnxModel.Load(path);
    double baseline = Accuracy(original);
    rows.Add($"| {name} | original | {baseline:P2} | {baseline:P2} | {baseline:P2} |");
    foreach (string variant in variants)
    {
        var cells = new List<string>();
        foreach (double cr in ratios)
        {
            var (accuracy, macs, recon) = Prune(path, original, cr, variant);
            cells.Add($"{accuracy:P2}");
            Console.Error.WriteLine($"{name} {variant} cr {cr}: accuracy {accuracy:P2}, MACs −{macs:P1}" +
                (recon is null ? "" : $", reconstruction {recon.Seconds:0.00} s wall, {cpuSeconds:0.00} s CPU (ORT {recon.RuntimeSeconds:0.00} s, {recon.FittedCount} layers, {recon.RuntimeRuns} ORT runs)"));
            if (recon is not null) timings.Add($"| {name} | {variant} | {cr} | {recon.Seconds:0.00} s | {cpuSeconds:0.00} s | {recon.RuntimeSeconds:0.00} s | {recon.FittedCount} | {recon.RuntimeRuns} |");
        }
        rows.Add($"| {name} | {variant} | {string.Join(" | ", cells)} |");
    }
}
Console.WriteLine($"Test accuracy on {testImages} Fashion-MNIST test images (MACs reduction →)\n");
Console.WriteLine($"| model | variant | {string.Join(" | ", ratios.Select(r => $"−{r:P0}"))} |");
Console.WriteLine($"|---|---|{string.Concat(ratios.Select(_ => "---|"))}");
rows.ForEach(Console.WriteLine);
if (timings.Count > 0)
{
    Console.WriteLine("\n| model | variant | cr | reconstruction wall | CPU | of it ONNX Runtime (wall) | layers | ORT runs |\n|---|---|---|---|---|---|---|---|");
    timings.ForEach(Console.WriteLine);
}
Console.WriteLine($"\npeak working set of this process: {Process.GetCurrentProcess().PeakWorkingSet64 / (1 << 20)} MiB");
return;

(double Accuracy, double MacsReduction, ReconstructionReport? Recon) Prune(string path, OnnxModel original, double cr, string variant)
{
    if (variant is not ("uniform-l2" or "sliming" or "data-free" or "calib" or "gem-calib" or "uniform-l2-calib" or "uniform-refit-calib"))
        throw new ArgumentException($"unknown variant '{variant}'");
    bool uniform = variant.StartsWith("uniform");
    bool calib = variant.EndsWith("calib");
    bool refit = variant is "calib" or "uniform-refit-calib";
    var pruneOptions = variant is "data-free" or "calib" or "gem-calib" ? PruneOptions.DataFree : PruneOptions.Plain;
    var request = new PruneRequest
    {
        ModelPath = path,
        OutputPath = Path.Combine(Path.GetTempPath(), "unused.onnx"),
        Cr = cr,
        Allocation = uniform ? AllocationMethod.Uniform : AllocationMethod.Sliming,
        Criterion = refit ? PruneRequest.RefitCriterion : uniform ? "l2" : "gem",
        RoundTo = PruneRequest.ParseRoundTo(Option("--round-to") ?? "auto"),
    };
    using var work = original.Clone();
    var analysis = ModelAnalysis.Run(work, []);
    var plan = Planner.Plan(analysis, request, [calibration]);
    if (verbose) Console.Error.WriteLine("  keep: " + string.Join(" ", analysis.Groups.Select(g => plan.KeepByGroup.TryGetValue(g.Id, out var k) ? k.Length : g.Width)));
    ChannelPruner.Apply(work, analysis.Groups, plan.KeepByGroup, pruneOptions);
    ReconstructionReport? report = null;
    cpuSeconds = 0;
    if (calib)
    {
        var kept = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var (id, keep) in plan.KeepByGroup)
            foreach (var producer in analysis.Groups[id].Producers) kept[producer.Id] = keep;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        report = Reconstruction.Run(original, work, kept, [calibration], reconstruction);
        cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
    }
    var after = ModelCost.Compute(work.Graph, ModelAnalysis.ProbeShapes(work, []));
    return (Accuracy(work), 1 - (double)after.Macs / analysis.Cost.Macs, report);
}

double Accuracy(OnnxModel model)
{
    using var runner = new ModelRunner(model.ToBytes());
    const int batch = 1000;
    long per = testX.Floats!.Length / testX.Shape[0];
    int correct = 0;
    for (int first = 0; first < testImages; first += batch)
    {
        int count = Math.Min(batch, testImages - first);
        var input = new NamedTensor("input", TensorElementType.Float, [count, .. testX.Shape[1..]],
            testX.Floats.AsSpan((int)(first * per), (int)(count * per)).ToArray());
        float[] logits = runner.Run([input])[0].AsFloats();
        int classes = logits.Length / count;
        for (int i = 0; i < count; i++)
            if (OutputComparison.ArgMax(logits.AsSpan(i * classes, classes)) == testY[first + i]) correct++;
    }
    return (double)correct / testImages;
}

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static string FindFixtures()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "OnnxSlim.sln")))
            return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "fixtures", "fashion-mnist"));
    throw new InvalidOperationException("OnnxSlim.sln not found; pass --fixtures DIR");
}
