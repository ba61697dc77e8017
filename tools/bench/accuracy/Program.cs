using OnnxSlim.Calibration;
using System.Diagnostics;
using OnnxSlim.Bench;
using OnnxSlim.GraphIO;
using OnnxSlim.Pruning;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

// Accuracy of pruned Fashion-MNIST ResNets on the 10,000 test images, per pruning variant and MACs reduction.
// Every variant is one Pruner.Prune call, exactly what the CLI runs with the same options:
//   uniform-l2           uniform allocation, L2 filter norms, plain slicing
//   sliming              SLIMING allocation and GEM selection, plain slicing
//   data-free            sliming + the rewriter's data-free compensation
//   calib                the CLI with --calib: refit ranking, data-free compensation, calibration reconstruction
//   gem-calib            --criterion gem --calib
//   uniform-l2-calib     uniform allocation, L2, plain slicing + calibration reconstruction
//   dotnet run -c Release -- [--fixtures DIR] [--models fm_resnet_fused,fm_resnet_bn] [--ratios 0.3,0.5,0.7]
//                            [--test-images N] [--calib-samples N] [--variants uniform-l2,sliming,data-free,calib,...]
var args_ = new BenchArgs(args);
string fixtures = BenchData.FashionMnist(args_);
string[] models = args_.List("--models", "fm_resnet_fused,fm_resnet_bn");
double[] ratios = args_.Doubles("--ratios", "0.3,0.5,0.7");
string[] variants = args_.List("--variants", "uniform-l2,sliming,data-free,calib");
var test = Classification.Load(Path.Combine(fixtures, "test_x.npy"), Path.Combine(fixtures, "test_y.npy"), args_.Int("--test-images", 10000));
var calibX = NpyFile.Read(Path.Combine(fixtures, "calib_x.npy"));
int calibSamples = Math.Min(args_.Int("--calib-samples", (int)calibX.Shape[0]), (int)calibX.Shape[0]);
var calibration = new NamedTensor("input", TensorElementType.Float, calibX.Shape, calibX.Floats!).Rows(0, calibSamples);

var rows = new List<string>();
var timings = new List<string>();
foreach (string name in models)
{
    using var original = OnnxModel.Load(Path.Combine(fixtures, name + ".onnx"));
    double baseline = test.Accuracy(original.ToBytes());
    rows.Add($"| {name} | original | {string.Join(" | ", ratios.Select(_ => $"{baseline:P2}"))} |");
    foreach (string variant in variants)
    {
        var cells = new List<string>();
        foreach (double cr in ratios)
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            using var result = Pruner.Prune(original, Options(variant, cr));
            double wall = clock.Elapsed.TotalSeconds, cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            double accuracy = test.Accuracy(result.Model.ToBytes());
            cells.Add($"{accuracy:P2}");
            Console.Error.WriteLine($"{name} {variant} cr {cr}: accuracy {accuracy:P2}, MACs −{result.Summary.AchievedReduction:P1}, {wall:0.00} s wall, {cpuSeconds:0.00} s CPU");
            if (result.Summary.Recovery is not null)
                timings.Add($"| {name} | {variant} | {cr} | {wall:0.00} s | {cpuSeconds:0.00} s | {result.Summary.Recovery} |");
        }
        rows.Add($"| {name} | {variant} | {string.Join(" | ", cells)} |");
    }
}
Console.WriteLine($"Test accuracy on {test.Count} Fashion-MNIST test images, {calibSamples} calibration images (MACs reduction →)\n");
Console.WriteLine($"| model | variant | {string.Join(" | ", ratios.Select(r => $"−{r:P0}"))} |");
Console.WriteLine($"|---|---|{string.Concat(ratios.Select(_ => "---|"))}");
rows.ForEach(Console.WriteLine);
if (timings.Count > 0)
{
    Console.WriteLine("\n| model | variant | cr | prune wall | CPU | recovery |\n|---|---|---|---|---|---|");
    timings.ForEach(Console.WriteLine);
}
Console.WriteLine($"\npeak working set of this process: {Process.GetCurrentProcess().PeakWorkingSet64 / (1 << 20)} MiB");

PruneOptions Options(string variant, double cr) => variant switch
{
    "uniform-l2" => new() { Ratio = cr, Allocation = AllocationMethod.Uniform, Criterion = SelectionCriterion.L2, Compensation = CompensationMode.None, Validate = false },
    "sliming" => new() { Ratio = cr, Compensation = CompensationMode.None, Validate = false },
    "data-free" => new() { Ratio = cr, Validate = false },
    "calib" => new() { Ratio = cr, Calibration = CalibrationData.FromTensors([calibration]), Validate = false },
    "gem-calib" => new() { Ratio = cr, Calibration = CalibrationData.FromTensors([calibration]), Criterion = SelectionCriterion.Gem, Validate = false },
    "uniform-l2-calib" => new() { Ratio = cr, Allocation = AllocationMethod.Uniform, Criterion = SelectionCriterion.L2, Compensation = CompensationMode.None, Calibration = CalibrationData.FromTensors([calibration]), Validate = false },
    _ => throw new ArgumentException($"unknown variant '{variant}'"),
};
