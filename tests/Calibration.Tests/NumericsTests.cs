using System.Runtime.Intrinsics;
using OnnxSlim.Spectral.Numerics;
using OnnxSlim.Calibration;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

public sealed class NumericsTests
{
    [Theory]
    [InlineData(90, 88)]
    [InlineData(200, 30)]
    public void Normal_equations_taken_on_two_cores_are_the_one_core_sums_bit_for_bit(int n, int m)
    {
        // Large enough that Add forms XᵀX and XᵀY side by side.
        var rng = new Random(n);
        const int stride = 512, rows = 500;
        var chunks = new[] { (X: StandardNormal.Vector(rng, n * stride), Y: StandardNormal.Vector(rng, m * stride), Rows: rows), (X: StandardNormal.Vector(rng, n * stride), Y: StandardNormal.Vector(rng, m * stride), Rows: rows - 7) };
        var eq = new NormalEquations(n, m);
        var gram = new double[n * n];
        var cross = new double[n * m];
        foreach (var (x, y, count) in chunks)
        {
            eq.Add(x, y, count, stride);
            BlockedProducts.Accumulate(x, n, x, n, count, stride, gram, n, lowerOnly: true);
            BlockedProducts.Accumulate(x, n, y, m, count, stride, cross, m, lowerOnly: false);
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) Assert.Equal(gram[i * n + j], eq.Gram[i * n + j]);
        Assert.Equal(cross, eq.Cross);
    }

    [Theory]
    [InlineData(150, 70)] // past one column tile of the float32 kernel, with a tail of 2 features
    [InlineData(9, 3)]    // on one core
    public void Normal_equations_from_float32_rows_match_the_float64_sums_and_the_lower_triangle_of_the_full_product(int n, int m)
    {
        var rng = new Random(n + m);
        const int stride = 512;
        var eq64 = new NormalEquations(n, m);
        var eq32 = new NormalEquations(n, m);
        var full = new double[n * n];
        foreach (int count in new[] { stride, stride - 13 })
        {
            // float32 rows (activations), held in float64 as the chunk buffers hold them
            var xs = StandardNormal.Vector(rng, n * stride).Select(v => (float)v).ToArray();
            var ys = StandardNormal.Vector(rng, m * stride).Select(v => (float)v).ToArray();
            double[] x = [.. xs.Select(v => (double)v)], y = [.. ys.Select(v => (double)v)];
            eq64.Add(x, y, count, stride);
            eq32.Add(xs, ys, y, count, stride);
            BlockedProducts.Accumulate(xs, n, xs, n, count, stride, full, n);
        }
        Assert.Equal(eq64.Rows, eq32.Rows);
        Assert.Equal(eq64.TargetSquares, eq32.TargetSquares);
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double scale = Math.Sqrt(eq64.Gram[i * n + i] * eq64.Gram[j * n + j]);
                Assert.True(Math.Abs(eq64.Gram[i * n + j] - eq32.Gram[i * n + j]) <= 1e-6 * scale, $"G[{i},{j}] {eq32.Gram[i * n + j]} vs {eq64.Gram[i * n + j]}");
                Assert.Equal(full[i * n + j], eq32.Gram[i * n + j]);
            }
        for (int i = 0; i < n; i++)
            for (int t = 0; t < m; t++)
            {
                double scale = Math.Sqrt(eq64.Gram[i * n + i] * eq64.TargetSquares[t]);
                Assert.True(Math.Abs(eq64.Cross[i * m + t] - eq32.Cross[i * m + t]) <= 1e-6 * scale, $"C[{i},{t}]");
            }
    }

    [Fact]
    public void Normal_equations_match_the_direct_sums_and_ridge_recovers_a_linear_map()
    {
        var rng = new Random(3);
        const int n = 7, m = 3, rows = 1300, stride = 512;
        var w = StandardNormal.Vector(rng, n * m); // true map, last feature is a bias column of ones
        var eq = new NormalEquations(n, m);
        var all = new List<(double[] X, double[] Y)>();
        for (int start = 0; start < rows; start += stride)
        {
            int count = Math.Min(stride, rows - start);
            var x = new double[n * stride];
            var y = new double[m * stride];
            for (int r = 0; r < count; r++)
            {
                var xr = StandardNormal.Vector(rng, n);
                xr[n - 1] = 1;
                var yr = new double[m];
                for (int t = 0; t < m; t++) for (int f = 0; f < n; f++) yr[t] += xr[f] * w[f * m + t];
                for (int f = 0; f < n; f++) x[f * stride + r] = xr[f];
                for (int t = 0; t < m; t++) y[t * stride + r] = yr[t];
                all.Add((xr, yr));
            }
            eq.Add(x, y, count, stride);
        }
        Assert.Equal(rows, eq.Rows);
        double g23 = all.Sum(r => r.X[2] * r.X[3]), c41 = all.Sum(r => r.X[4] * r.Y[1]);
        Assert.Equal(g23, eq.Gram[3 * n + 2], 9);
        Assert.Equal(c41, eq.Cross[4 * m + 1], 9);

        var theta = RidgeSolver.Factor(eq, 1e-12, lastIsBias: true)!.Solve(eq.Cross, m)!;
        for (int i = 0; i < w.Length; i++) Assert.Equal(w[i], theta[i], 6);
        eq.Symmetrize();
        Assert.True(eq.RelativeError(theta) < 1e-6);
        Assert.Equal(1, eq.RelativeError(new double[n * m]), 9);
    }

    [Theory]
    [InlineData(200, 30)] // three blocks of G·Θ rows, the last partial, over the cores
    [InlineData(5, 4)]    // one block on the calling thread
    public void Squared_error_from_the_sums_is_the_error_of_the_rows(int n, int m)
    {
        var rng = new Random(n + m);
        const int stride = 512, rows = 700;
        var eq = new NormalEquations(n, m);
        var theta = StandardNormal.Vector(rng, n * m);
        double direct = 0;
        for (int start = 0; start < rows; start += stride)
        {
            int count = Math.Min(stride, rows - start);
            var x = new double[n * stride];
            var y = new double[m * stride];
            for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() - 0.5;
            for (int i = 0; i < y.Length; i++) y[i] = rng.NextDouble() - 0.5;
            for (int r = 0; r < count; r++)
                for (int t = 0; t < m; t++)
                {
                    double p = 0;
                    for (int f = 0; f < n; f++) p += x[f * stride + r] * theta[f * m + t];
                    direct += (p - y[t * stride + r]) * (p - y[t * stride + r]);
                }
            eq.Add(x, y, count, stride);
        }
        eq.Symmetrize();
        double fromSums = eq.SquaredError(theta);
        Assert.Equal(direct, fromSums, direct * 1e-10);
        Assert.Equal(fromSums, eq.SquaredError(theta));
        Assert.NotEqual(fromSums, eq.SquaredError([.. theta.Select(v => v * 1.01)]));
    }

    [Theory]
    [InlineData(37, 300, 600)] // blocks of 16 rows over the cores, the last partial
    [InlineData(3, 5, 4)]
    public void Pooled_targets_of_a_block_of_rows_are_those_of_each_row_bit_for_bit(int rows, int inputs, int outputs)
    {
        var rng = new Random(rows);
        var weights = StandardNormal.Vector(rng, inputs * outputs);
        var bias = StandardNormal.Vector(rng, outputs);
        var map = new PooledTargetMap(inputs, outputs, weights, bias);
        // Post-ReLU inputs: about half are zero, which the map skips.
        var x = new float[rows * inputs];
        for (int i = 0; i < x.Length; i++) x[i] = Math.Max(0, (float)(rng.NextDouble() - 0.5));
        var together = new float[rows * outputs];
        map.Apply(x, rows, together);
        for (int r = 0; r < rows; r++)
        {
            var one = new float[outputs];
            map.Apply(x.AsSpan(r * inputs, inputs), one);
            Assert.Equal(one, together.AsSpan(r * outputs, outputs).ToArray());
        }
        Assert.Throws<ArgumentException>(() => map.Apply(x, rows + 1, together));
    }

    [Theory]
    [InlineData(9, 6, 300)]
    [InlineData(8, 8, 512)]
    [InlineData(3, 5, 7)]
    public void Blocked_float_kernels_match_naive_sums(int n, int m, int rows)
    {
        var rng = new Random(n * 100 + m);
        var x = StandardNormal.Vector(rng, n * rows).Select(v => (float)v).ToArray();
        var t = StandardNormal.Vector(rng, m * rows).Select(v => (float)v).ToArray();
        var cross = new double[n * m];
        BlockedProducts.Accumulate(x, n, t, m, rows, rows, cross, m);
        for (int f = 0; f < n; f++)
            for (int o = 0; o < m; o++)
            {
                double expected = 0;
                for (int r = 0; r < rows; r++) expected += (double)x[f * rows + r] * t[o * rows + r];
                Assert.Equal(expected, cross[f * m + o], 3);
            }

        var w = StandardNormal.Vector(rng, n * m).Select(v => (float)v).ToArray();
        int r0 = rows / 3, count = rows - r0, pStride = count + 5;
        var p = Enumerable.Repeat(float.NaN, m * pStride).ToArray();
        BlockedProducts.Project(x, n, rows, r0, count, w, m, p, pStride);
        for (int o = 0; o < m; o++)
            for (int r = 0; r < count; r++)
            {
                double expected = 0;
                for (int f = 0; f < n; f++) expected += (double)w[f * m + o] * x[f * rows + r0 + r];
                Assert.Equal(expected, p[o * pStride + r], 3);
            }
    }

    [Theory]
    [InlineData(600)]
    [InlineData(601)]
    public void Float_products_sum_each_flush_in_eight_lanes_in_the_order_of_Vector256_Sum(int rows)
    {
        // 8 × 12 features: 4×4 register blocks only. 600 rows = 256 + 256 + 88 (every flush a multiple of 8, whose lane
        // sums are reduced four at a time); 601 leaves one row past the lanes in the last flush (added in float64).
        const int n = 8, m = 12;
        var rng = new Random(rows);
        var x = StandardNormal.Vector(rng, n * rows).Select(v => (float)v).ToArray();
        var t = StandardNormal.Vector(rng, m * rows).Select(v => (float)v).ToArray();
        var cross = new double[n * m];
        BlockedProducts.Accumulate(x, n, t, m, rows, rows, cross, m);
        for (int f = 0; f < n; f++)
            for (int o = 0; o < m; o++)
            {
                double expected = 0;
                for (int r0 = 0; r0 < rows; r0 += BlockedProducts.Flush)
                {
                    int count = Math.Min(BlockedProducts.Flush, rows - r0), r = 0;
                    var lanes = Vector256<float>.Zero;
                    for (; r + 8 <= count; r += 8)
                        lanes = Vector256.FusedMultiplyAdd(Vector256.Create(x, f * rows + r0 + r), Vector256.Create(t, o * rows + r0 + r), lanes);
                    double sum = Vector256.Sum(lanes);
                    for (; r < count; r++) sum += (double)x[f * rows + r0 + r] * t[o * rows + r0 + r];
                    expected += sum;
                }
                Assert.Equal(expected, cross[f * m + o]);
            }
    }

    [Theory]
    [InlineData(290)]
    [InlineData(274)]
    public void Projection_is_one_multiply_add_chain_per_entry_across_feature_blocks(int count)
    {
        // 600 features span three feature blocks; 13 outputs = 8 + 4 in registers + 1 on its own; 290 rows = 9 × 32 + 2,
        // 274 = 8 × 32 + 16 + 2 (blocks of 32 rows where 512-bit registers are there, of 16 after them).
        const int n = 600, m = 13, rows = 300, r0 = 7;
        var rng = new Random(3);
        var x = StandardNormal.Vector(rng, n * rows).Select(v => (float)v).ToArray();
        var w = StandardNormal.Vector(rng, n * m).Select(v => (float)v).ToArray();
        w[5 * m + 12] = 0;
        var p = new float[m * count];
        BlockedProducts.Project(x, n, rows, r0, count, w, m, p, count);
        for (int o = 0; o < m; o++)
            for (int r = 0; r < count; r++)
            {
                float expected = 0;
                bool chained = o < 12 && r < count / 16 * 16;
                for (int f = 0; f < n; f++)
                {
                    float wf = w[f * m + o], xf = x[f * rows + r0 + r];
                    if (chained) expected = MathF.FusedMultiplyAdd(wf, xf, expected);
                    else if (wf != 0) expected += wf * xf;
                }
                Assert.Equal(expected, p[o * count + r]);
            }
    }

    [Fact]
    public void Cholesky_solves_a_blocked_system()
    {
        // Larger than one 64-row block, so the parallel part runs.
        var rng = new Random(5);
        const int n = 150, m = 4;
        var b = StandardNormal.Vector(rng, n * n);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = i == j ? n : 0;
                for (int k = 0; k < n; k++) s += b[i * n + k] * b[j * n + k];
                a[i * n + j] = s;
            }
        var x = StandardNormal.Vector(rng, n * m);
        var rhs = new double[n * m];
        for (int i = 0; i < n; i++) for (int t = 0; t < m; t++) for (int k = 0; k < n; k++) rhs[i * m + t] += a[i * n + k] * x[k * m + t];
        var l = (double[])a.Clone();
        Assert.True(Cholesky.Factor(l, n));
        Cholesky.Solve(l, n, rhs, m);
        for (int i = 0; i < x.Length; i++) Assert.Equal(x[i], rhs[i], 8);

        var indefinite = new double[] { 1, 2, 2, 1 };
        Assert.False(Cholesky.Factor(indefinite, 2));
    }

    [Fact]
    public void Sampling_is_sorted_distinct_bounded_and_seeded()
    {
        var a = PositionSampler.Sample(1_000_000, 20000, 42);
        Assert.Equal(20000, a.Length);
        Assert.True(a.Zip(a.Skip(1)).All(p => p.First < p.Second));
        Assert.True(a[0] >= 0 && a[^1] < 1_000_000);
        Assert.Equal(a, PositionSampler.Sample(1_000_000, 20000, 42));
        Assert.NotEqual(a, PositionSampler.Sample(1_000_000, 20000, 43));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), PositionSampler.Sample(10, 20000, 1));
        Assert.NotEqual(PositionSampler.LayerSeed(0, "a"), PositionSampler.LayerSeed(0, "b"));
    }

    [Theory]
    [InlineData("SamplePositions", 0)]
    [InlineData("Ridge", -1.0)]
    [InlineData("Ridge", double.NaN)]
    [InlineData("MaxBatch", 0)]
    [InlineData("ReluIterations", -1)]
    [InlineData("ReluTolerance", -0.5)]
    [InlineData("ReluTolerance", double.PositiveInfinity)]
    [InlineData("ReluErrorTolerance", -0.5)]
    [InlineData("ReluErrorTolerance", double.NaN)]
    [InlineData("MaxReluProductMacs", -1.0)]
    [InlineData("MaxReluProductMacs", double.NaN)]
    [InlineData("MaxFeatures", 0)]
    public void Options_refuse_bad_values_naming_them(string name, object value)
    {
        var e = Assert.Throws<ArgumentException>(() => name switch
        {
            "SamplePositions" => new ReconstructionOptions { SamplePositions = (int)value },
            "Ridge" => new ReconstructionOptions { Ridge = (double)value },
            "MaxBatch" => new ReconstructionOptions { MaxBatch = (int)value },
            "ReluIterations" => new ReconstructionOptions { ReluIterations = (int)value },
            "ReluTolerance" => new ReconstructionOptions { ReluTolerance = (double)value },
            "ReluErrorTolerance" => new ReconstructionOptions { ReluErrorTolerance = (double)value },
            "MaxReluProductMacs" => new ReconstructionOptions { MaxReluProductMacs = (double)value },
            _ => new ReconstructionOptions { MaxFeatures = (int)value },
        });
        Assert.Contains(name, e.Message);
        Assert.Contains(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!, e.Message);
    }
}
