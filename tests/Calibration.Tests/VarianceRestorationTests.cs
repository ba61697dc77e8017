using OnnxSlim.Calibration;

namespace OnnxSlim.Calibration.Tests;

public sealed class VarianceRestorationTests
{
    private const int Rows = 400, Features = 6, Outputs = 3; // the last feature is the bias column

    /// <summary>
    /// Feature-major rows x (Features × Rows, the bias column of ones last) and targets y (Outputs × Rows): output 0 explained
    /// by the features up to small noise, output 1 half noise, output 2 noise alone (nothing to explain it).
    /// </summary>
    private static (double[] X, double[] Y) Rows_(int seed)
    {
        var rng = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var x = new double[Features * Rows];
        var y = new double[Outputs * Rows];
        for (int r = 0; r < Rows; r++)
        {
            for (int f = 0; f < Features - 1; f++) x[f * Rows + r] = Normal() + f;
            x[(Features - 1) * Rows + r] = 1;
            double signal = 0.8 * x[r] - 0.5 * x[Rows + r] + 0.3 * x[2 * Rows + r];
            y[r] = signal + 0.05 * Normal() + 2;
            y[Rows + r] = signal + 0.7 * Normal() - 1;
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
    public void Each_output_of_a_ridge_fit_gets_the_targets_mean_and_variance_back_up_to_twice_its_spread()
    {
        var (x, y) = Rows_(5);
        var eq = new NormalEquations(Features, Outputs);
        eq.Add(x, y, Rows, Rows);
        var solver = RidgeSolver.Factor(eq, 0.05, lastIsBias: true)!;
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
        Assert.True(Spread(x, fit, y, 2).Variance > 4 * fitVariance);
        Assert.Equal(fitMean, capMean, 9);
        Assert.Equal(VarianceRestoration.MaxScale * VarianceRestoration.MaxScale, capVariance / fitVariance, 9);
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
