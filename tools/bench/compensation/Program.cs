using System.Security.Cryptography;
using OnnxSlim.Bench;
using OnnxSlim.Pruning;
using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

// Data-free compensation on the trained Fashion-MNIST ResNets: test accuracy without retraining and without
// calibration data, per keep plan (uniform-l2 baseline or the SLIMING default), MACs reduction and variant.
// Also top-1 agreement with the original on the 256 calibration (training) images: a label-free signal
// for choosing among variants that does not look at the test set.
//   dotnet run -c Release -- [--fixtures DIR] [--models fm_resnet_bn,fm_resnet_fused] [--ratios 0.3,0.5,0.7]
//        [--plans uniform-l2,sliming] [--test-images N] [--variants none,exact,ls1,ls1+bias,...]
// A variant is '+'-separated tokens: none | exact | lsK (least squares, K kept filters per removed one) |
// tX (minimum match cosine X) | rX (ridge X) | signed (signed coefficients through ReLU too) | bias (BatchNorm bias
// correction) | var (BatchNorm variance correction).
var bench = new BenchArgs(args);
if (Option("--real") is { } realModels)
{
    // Robustness and cost on real models: SLIMING plan at --cr (default 0.5), plain vs the data-free default,
    // time of the rewrite and output cosine against the original on one random input.
    foreach (string path in realModels.Split(','))
    {
        using var original = OnnxModel.Load(path);
        var analysis = ModelAnalysis.Run(original, []);
        var request = new PruneOptions { Ratio = double.Parse(Option("--cr") ?? "0.5") };
        var keep = Planner.Plan(analysis, request).KeepByGroup;
        using var originalRunner = new ModelRunner(original.ToBytes());
        var inputs = InputGenerator.Generate(originalRunner.Inputs, InputShapes.Resolve(originalRunner.Inputs, []), 7);
        var reference = originalRunner.Run(inputs);
        foreach (var (label, options) in new[] { ("plain", RewriteOptions.Plain), ("exact", new RewriteOptions { Compensation = Compensation.Exact }), ("data-free", RewriteOptions.DataFree) })
        {
            using var work = original.Clone();
            var groups = ModelAnalysis.Run(work, []).Groups;
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var result = ChannelPruner.Apply(work, groups, keep, options);
            double seconds = watch.Elapsed.TotalSeconds;
            using var runner = new ModelRunner(work.ToBytes());
            var comparison = OutputComparison.Compare(reference, runner.Run(inputs));
            Console.WriteLine($"{Path.GetFileNameWithoutExtension(path)} {label}: rewrite {seconds:0.00} s, cosine {comparison.Cosine:0.0000}, merged {result.Merged}, folded {result.Folded}/{result.Removed}, corrected {result.BiasCorrected} layers"
                + (result.Notes.Count > 0 ? $" [{string.Join("; ", result.Notes.Take(3))}{(result.Notes.Count > 3 ? $" … {result.Notes.Count} notes" : "")}]" : ""));
        }
    }
    return;
}
string fixtures = BenchData.FashionMnist(bench);
string[] models = (Option("--models") ?? "fm_resnet_bn,fm_resnet_fused").Split(',');
double[] ratios = [.. (Option("--ratios") ?? "0.3,0.5,0.7").Split(',').Select(double.Parse)];
string[] plans = (Option("--plans") ?? "uniform-l2,sliming").Split(',');
string[] variants = (Option("--variants") ?? "none,exact,bias,ls1,ls1+bias,ls1+t0.5+bias,ls4+bias,ls4+signed+bias").Split(',');
var test = Classification.Load(Path.Combine(fixtures, "test_x.npy"), Path.Combine(fixtures, "test_y.npy"), bench.Int("--test-images", 10000));
var calibX = NpyFile.Read(Path.Combine(fixtures, "calib_x.npy"));
var calibSet = new Classification(calibX, new long[calibX.Shape[0]], (int)calibX.Shape[0]);
int testImages = test.Count;

var table = new List<string>();
foreach (string name in models)
{
    string path = Path.Combine(fixtures, name + ".onnx");
    using var original = OnnxModel.Load(path);
    var reference = calibSet.Predict(original.ToBytes());
    double baseline = test.Accuracy(original.ToBytes());
    table.Add($"| {name} | original | | {baseline:P2} |");
    foreach (string planName in plans)
        foreach (double cr in ratios)
        {
            var analysis = ModelAnalysis.Run(original, []);
            var request = new PruneOptions
            {
                Ratio = cr,
                Allocation = planName == "uniform-l2" ? AllocationMethod.Uniform : AllocationMethod.Sliming,
                Criterion = planName == "uniform-l2" ? SelectionCriterion.L2 : SelectionCriterion.Gem,
            };
            var keep = Planner.Plan(analysis, request).KeepByGroup;
            foreach (string variant in variants)
            {
                var options = Parse(variant);
                using var work = original.Clone();
                var groups = ModelAnalysis.Run(work, []).Groups;
                var started = DateTime.UtcNow;
                var result = ChannelPruner.Apply(work, groups, keep, options);
                double seconds = (DateTime.UtcNow - started).TotalSeconds;
                byte[] bytes = work.ToBytes();
                double agreement = Classification.Agreement(calibSet.Predict(bytes), reference);
                double accuracy = test.Accuracy(bytes);
                string hash = Convert.ToHexString(SHA256.HashData(bytes))[..8];
                Console.Error.WriteLine($"{name} {planName} cr {cr} {variant}: test {accuracy:P2}, calib agreement {agreement:P1}, merged {result.Merged}, folded {result.Folded}/{result.Removed}, bias {result.BiasCorrected} layers, {seconds:0.00} s, sha {hash}"
                    + (result.Notes.Count > 0 ? $" [{string.Join("; ", result.Notes)}]" : ""));
                table.Add($"| {name} | {planName} −{cr:P0} {variant} | {agreement:P1} | {accuracy:P2} |");
                if (args.Contains("--diagnose")) Diagnose(work);
            }
        }
}
Console.WriteLine($"Test accuracy on {testImages} Fashion-MNIST test images; agreement = top-1 agreement with the original on the 256 calibration images\n");
Console.WriteLine("| model | plan, MACs reduction, variant | calib agreement | test accuracy |\n|---|---|---|---|");
table.ForEach(Console.WriteLine);
return;

RewriteOptions Parse(string variant)
{
    var options = new RewriteOptions();
    foreach (string token in variant.Split('+'))
    {
        if (token == "none") options = options with { Compensation = Compensation.None };
        else if (token == "exact") options = options with { Compensation = Compensation.Exact };
        else if (token.StartsWith("ls")) options = options with { Compensation = Compensation.LeastSquares, FoldTerms = int.Parse(token[2..]) };
        else if (token.StartsWith('t')) options = options with { MinMatch = double.Parse(token[1..]) };
        else if (token.StartsWith("r")) options = options with { Ridge = double.Parse(token[1..]) };
        else if (token.StartsWith("o")) options = options with { OffsetWeight = double.Parse(token[1..]) };
        else if (token == "signed") options = options with { SignedThroughNonlinearity = true };
        else if (token == "bias") options = options with { BiasCorrection = true };
        else if (token == "var") options = options with { VarianceCorrection = true };
        else throw new ArgumentException($"unknown variant token '{token}'");
    }
    return options;
}


// How far each BatchNorm's running statistics are from its input's actual statistics on the calibration images.
void Diagnose(OnnxModel model)
{
    var bns = model.Graph.Nodes.Where(n => n.OpType == "BatchNormalization").ToList();
    using var runner = new ModelRunner(model.ToBytesWithOutputs(bns.Select(bn => bn.Input(0))));
    var input = new NamedTensor("input", TensorElementType.Float, calibX.Shape, calibX.Floats!);
    var outputs = runner.Run([input]).ToDictionary(o => o.Name);
    var line = new List<string>();
    foreach (var bn in bns)
    {
        var x = outputs[bn.Input(0)];
        int n = (int)x.Shape[0], c = (int)x.Shape[1], hw = (int)(x.ElementCount / n / c);
        var data = x.AsFloats();
        var mean = model.Graph.ResolveWeight(bn.Input(3))!.Tensor.ToFloats();
        var variance = model.Graph.ResolveWeight(bn.Input(4))!.Tensor.ToFloats();
        double meanError = 0, varError = 0;
        for (int ch = 0; ch < c; ch++)
        {
            double s = 0, s2 = 0;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < hw; p++) { double v = data[((long)i * c + ch) * hw + p]; s += v; s2 += v * v; }
            double m = s / (n * hw), vr = Math.Max(s2 / (n * hw) - m * m, 1e-12);
            meanError += Math.Abs(m - mean[ch]) / Math.Sqrt(vr);
            varError += Math.Log(vr / variance[ch]);
        }
        line.Add($"{bn.Name.Replace("/layer", "L").Replace("BatchNormalization", "bn")}:{meanError / c:0.00}/{varError / c:+0.00;-0.00}");
    }
    Console.Error.WriteLine("   BN |mean error|/σ / mean log(actual var/running var):\n     " + string.Join("\n     ", line));
}

string? Option(string name) => bench.Option(name);
