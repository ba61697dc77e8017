using OnnxSlim.Calibration;
using OnnxSlim.GraphIO;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

public sealed class VarianceRestorationTests
{
    private const int Rows = 400, Features = 6, Outputs = 3; // the last feature is the bias column

    /// <summary>
    /// Feature-major rows x (Features × Rows, the bias column of ones last) and targets y (Outputs × Rows): output 0 explained
    /// by the features up to small noise, output 1 with more noise, output 2 noise alone (nothing to explain it).
    /// </summary>
    private static (double[] X, double[] Y) Rows_(int seed)
    {
        var rng = new Random(seed);
        double Normal() => StandardNormal.Next(rng);
        var x = new double[Features * Rows];
        var y = new double[Outputs * Rows];
        for (int r = 0; r < Rows; r++)
        {
            for (int f = 0; f < Features - 1; f++) x[f * Rows + r] = Normal() + f;
            x[(Features - 1) * Rows + r] = 1;
            double signal = 0.8 * x[r] - 0.5 * x[Rows + r] + 0.3 * x[2 * Rows + r];
            y[r] = signal + 0.05 * Normal() + 2;
            y[Rows + r] = signal + 0.4 * Normal() - 1;
            y[2 * Rows + r] = 0.4 * Normal() + 0.5;
        }
        return (x, y);
    }

    private static (double Mean, double Variance) Spread(double[] x, double[] theta, double[]? y, int o)
    {
        var values = new double[Rows];
        for (int r = 0; r < Rows; r++)
        {
            if (y is not null) { values[r] = y[o * Rows + r]; continue; }
            for (int f = 0; f < Features; f++) values[r] += x[f * Rows + r] * theta[f * Outputs + o];
        }
        double mean = values.Average();
        return (mean, values.Select(v => (v - mean) * (v - mean)).Average());
    }

    [Fact]
    public void Each_output_of_a_ridge_fit_gets_the_targets_mean_and_variance_back_up_to_the_largest_spread()
    {
        var (x, y) = Rows_(5);
        var eq = new NormalEquations(Features, Outputs);
        eq.Add(x, y, Rows, Rows);
        var solver = RidgeSolver.Factor(eq, 0.005, lastIsBias: true)!;
        var prior = Enumerable.Range(0, Features * Outputs).Select(i => 0.1 * (i % 5) - 0.2).ToArray();
        var fit = solver.Solve(eq.Cross, Outputs, prior)!;
        var restored = (double[])fit.Clone();
        Assert.Equal(3, VarianceRestoration.Apply(eq, solver, restored, prior));
        for (int o = 0; o < 2; o++)
        {
            var (targetMean, targetVariance) = Spread(x, restored, y, o);
            var (mean, variance) = Spread(x, restored, null, o);
            Assert.True(Spread(x, fit, null, o).Variance < 0.99 * targetVariance, $"output {o}: the ridge fit is not narrower");
            Assert.Equal(targetMean, mean, 9);
            Assert.Equal(1, variance / targetVariance, 9);
        }
        // Output 2: its fit explains almost nothing, so it is spread by the cap alone, about the same mean.
        var (fitMean, fitVariance) = Spread(x, fit, null, 2);
        var (capMean, capVariance) = Spread(x, restored, null, 2);
        Assert.True(Spread(x, fit, y, 2).Variance > 4 * VarianceRestoration.MaxScale * VarianceRestoration.MaxScale * fitVariance);
        Assert.Equal(fitMean, capMean, 9);
        Assert.Equal(VarianceRestoration.MaxScale * VarianceRestoration.MaxScale, capVariance / fitVariance, 9);
    }

    [Fact]
    public void A_fit_of_other_targets_keeps_its_own_mean_and_gets_the_original_targets_variance()
    {
        // As after a ReLU-aware re-solve: the weights fit targets y' (here y pulled a tenth toward its mean and shifted), and
        // the spread to restore is the original targets' y.
        var (x, y) = Rows_(7);
        var eq = new NormalEquations(Features, Outputs);
        eq.Add(x, y, Rows, Rows);
        var shrunk = new double[y.Length];
        for (int o = 0; o < Outputs; o++)
        {
            double yMean = y.AsSpan(o * Rows, Rows).ToArray().Average();
            for (int r = 0; r < Rows; r++) shrunk[o * Rows + r] = yMean + 0.9 * (y[o * Rows + r] - yMean) - 0.3;
        }
        var other = new NormalEquations(Features, Outputs);
        other.Add(x, shrunk, Rows, Rows);
        var solver = RidgeSolver.Factor(eq, 0.005, lastIsBias: true)!;
        var fit = solver.Solve(other.Cross, Outputs)!;
        var restored = (double[])fit.Clone();
        Assert.Equal(3, VarianceRestoration.Apply(eq, solver, restored, null, other.Cross));
        var (shrunkMean, _) = Spread(x, restored, shrunk, 0);
        var (targetMean, targetVariance) = Spread(x, restored, y, 0);
        var (mean, variance) = Spread(x, restored, null, 0);
        Assert.Equal(shrunkMean, mean, 9);
        Assert.NotEqual(targetMean, mean, 3);
        Assert.Equal(1, variance / targetVariance, 9);
        Assert.Throws<ArgumentException>(() => VarianceRestoration.Apply(eq, solver, fit, null, new double[fit.Length + 1]));
    }

    /// <summary>
    /// The reconstruction's log after conv A of <paramref name="build"/>'s model (input x [3, 8, 8]) keeps only the channels
    /// <paramref name="keep"/>, its <paramref name="readers"/> sliced to match, on 16 Gaussian samples.
    /// </summary>
    private static List<string> LogWithAPruned(Func<OnnxModel> build, string[] readers, int[] keep, int calibrationSeed, bool restore)
    {
        var original = build();
        var pruned = build();
        ModelOps.SliceAxis(pruned, "A.w", 0, keep);
        foreach (string reader in readers) ModelOps.SliceAxis(pruned, reader + ".w", 1, keep);
        pruned.Graph.Reindex();
        var calib = ModelOps.Floats("x", [16, 3, 8, 8], new GraphBuilder(seed: calibrationSeed).Normal(16 * 192));
        var lines = new List<string>();
        Reconstruction.Run(original, pruned, HandPruned.Layers(original, pruned, new Dictionary<string, int[]> { ["A"] = keep }), [calib],
            new ReconstructionOptions { RestoreVariance = restore, Log = lines.Add });
        return lines;
    }

    [Fact]
    public void A_reader_is_spread_unless_it_is_one_branch_of_a_sum_the_other_branch_is_fitted_to()
    {
        // x → A (6 channels, 2 pruned) → a;  a → B → b, a → C → c, z = b + c → Relu;  a → D → d (an output of its own).
        // B and C are one sum's branches: the later one fits the sum less the earlier one's pruned output.
        OnnxModel Build()
        {
            var m = new GraphBuilder(seed: 71);
            m.WithInput("x", -1, 3, 8, 8)
                .WithInitializer("A.w", [6, 3, 3, 3], m.Normal(6 * 27, 0.4))
                .WithInitializer("B.w", [4, 6, 1, 1], m.Normal(24, 0.4)).WithInitializer("B.b", [4], m.Normal(4, 0.1))
                .WithInitializer("C.w", [4, 6, 1, 1], m.Normal(24, 0.4)).WithInitializer("C.b", [4], m.Normal(4, 0.1))
                .WithInitializer("D.w", [4, 6, 1, 1], m.Normal(24, 0.4)).WithInitializer("D.b", [4], m.Normal(4, 0.1))
                .WithNode("Conv", "A", ["x", "A.w"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
                .WithNode("Conv", "B", ["a", "B.w", "B.b"], ["b"])
                .WithNode("Conv", "C", ["a", "C.w", "C.b"], ["c"])
                .WithNode("Add", "add", ["b", "c"], ["z"])
                .WithNode("Relu", "rz", ["z"], ["y"])
                .WithNode("Conv", "D", ["a", "D.w", "D.b"], ["d"])
                .WithOutput("y").WithOutput("d");
            return m.Model();
        }
        List<string> Log(bool restore) => LogWithAPruned(Build, ["B", "C", "D"], [0, 1, 2, 3], calibrationSeed: 4, restore);
        var lines = Log(restore: true);
        string Line(string layer) => Assert.Single(lines, l => l.StartsWith(layer + ":"));
        Assert.Contains("outputs spread", Line("D"));
        // The later branch is ReLU-aware (it fits the sum); the earlier one is fitted plainly and left unspread (spread, its
        // fit here would be worse than the sliced weights and skipped).
        Assert.Contains("ReLU-aware", Line("C"));
        Assert.DoesNotContain("spread", Line("C"));
        Assert.Matches(@"^B: error [0-9.]+ → [0-9.]+ \(1024 rows × 5, [0-9.]+ s\)$", Line("B"));
        Assert.DoesNotContain(Log(restore: false), l => l.Contains("spread"));
    }

    [Fact]
    public void A_hard_gate_aware_fit_is_spread_after_its_re_solves_and_a_relu_aware_one_is_not()
    {
        // x → A (6 channels, 2 pruned) → a;  a → B → HardSwish → y;  a → C → Relu → r. B's pre-activation is wide (σ ≈ 5),
        // so that many of its values fall below the gate's floor of −3 and the gate-aware re-solves change its weights.
        OnnxModel Build()
        {
            var m = new GraphBuilder(opset: 14, seed: 72);
            m.WithInput("x", -1, 3, 8, 8)
                .WithInitializer("A.w", [6, 3, 3, 3], m.Normal(6 * 27, 0.4))
                .WithInitializer("B.w", [4, 6, 1, 1], m.Normal(24, 1.0)).WithInitializer("B.b", [4], m.Normal(4, 0.1))
                .WithInitializer("C.w", [4, 6, 1, 1], m.Normal(24, 1.0)).WithInitializer("C.b", [4], m.Normal(4, 0.1))
                .WithNode("Conv", "A", ["x", "A.w"], ["a"], ("pads", new long[] { 1, 1, 1, 1 }))
                .WithNode("Conv", "B", ["a", "B.w", "B.b"], ["b"])
                .WithNode("HardSwish", "hs", ["b"], ["y"])
                .WithNode("Conv", "C", ["a", "C.w", "C.b"], ["c"])
                .WithNode("Relu", "rc", ["c"], ["r"])
                .WithOutput("y").WithOutput("r");
            return m.Model();
        }
        List<string> Log(bool restore) => LogWithAPruned(Build, ["B", "C"], [0, 1, 3, 4], calibrationSeed: 5, restore);
        var lines = Log(restore: true);
        string Line(string layer) => Assert.Single(lines, l => l.StartsWith(layer + ":"));
        Assert.Matches(@"hard-gate-aware, [1-9][0-9]* re-solves?, [1-4] of 4 outputs spread\)$", Line("B"));
        Assert.Contains("ReLU-aware", Line("C"));
        Assert.DoesNotContain("spread", Line("C"));
        Assert.DoesNotContain(Log(restore: false), l => l.Contains("spread"));
    }

    [Fact]
    public void An_exact_fit_is_left_as_it_is()
    {
        var (x, _) = Rows_(6);
        var y = new double[Outputs * Rows];
        for (int o = 0; o < Outputs; o++)
            for (int r = 0; r < Rows; r++) y[o * Rows + r] = (o + 1) * x[r] - x[3 * Rows + r] + o;
        var eq = new NormalEquations(Features, Outputs);
        eq.Add(x, y, Rows, Rows);
        var solver = RidgeSolver.Factor(eq, 0, lastIsBias: true)!;
        var fit = solver.Solve(eq.Cross, Outputs)!;
        var same = (double[])fit.Clone();
        Assert.Equal(0, VarianceRestoration.Apply(eq, solver, same, null));
        Assert.Equal(fit, same);
        Assert.Throws<ArgumentException>(() => VarianceRestoration.Apply(eq, solver, new double[fit.Length - 1], null));
    }
}
