using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

/// <summary>Grams built from streamed rows: the float64 one bit-identical to the stored matrix's, the float32 one close to it.</summary>
public class SingleGramTests
{
    /// <summary>Rows of a stored matrix, read the way a group's weights are: float32 values times a per-row scale.</summary>
    private sealed class ScaledRows(float[] values, double[] scale, int cols) : IRowSource
    {
        public void Read(int row, int col, Span<double> destination)
        {
            for (int c = 0; c < destination.Length; c++) destination[c] = values[row * cols + col + c] * scale[row];
        }
    }

    private static (ScaledRows Rows, double[] Stored) LowRankRows(int rows, int cols, int rank, int seed)
    {
        var syn = new Synthetic(seed);
        var u = new double[rows * rank];
        var v = new double[rank * cols];
        for (int i = 0; i < u.Length; i++) u[i] = syn.Gauss();
        for (int i = 0; i < v.Length; i++) v[i] = syn.Gauss();
        var values = new float[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double s = 0.05 * syn.Gauss();
                for (int k = 0; k < rank; k++) s += u[i * rank + k] * v[k * cols + j];
                values[i * cols + j] = (float)s;
            }
        var scale = Enumerable.Range(0, rows).Select(i => 0.5 + (i % 7) * 0.25).ToArray();
        var rowsSource = new ScaledRows(values, scale, cols);
        var stored = new double[rows * cols];
        for (int i = 0; i < rows; i++) rowsSource.Read(i, 0, stored.AsSpan(i * cols, cols));
        return (rowsSource, stored);
    }

    [Fact]
    public void StreamedDoubleGramIsTheStoredMatrixsBitForBit()
    {
        var (rows, stored) = LowRankRows(70, 700, 20, 3); // 700 columns: three depth panels, the last one partial
        var fromMatrix = new double[70 * 70];
        var fromRows = new double[70 * 70];
        Gemm.GramOfRows(stored, 70, 700, fromMatrix, parallel: false);
        Gemm.GramOfRows(rows, 70, 700, fromRows, parallel: true);
        Assert.Equal(fromMatrix, fromRows);

        var streamed = new FilterMatrix(70, 700, rows);
        Assert.Equal(FilterSpectrum.Compute(new FilterMatrix(70, 700, stored)).SingularValues, FilterSpectrum.Compute(streamed).SingularValues);
        Assert.Equal(stored, streamed.Data.ToArray()); // stored on demand, the same values
    }

    [Fact]
    public void SingleGramAgreesWithDoubleWithinFloat32Rounding()
    {
        if (!SingleGram.Available) return; // needs 256- or 512-bit vectors; the planner then stays in float64
        const int n = 300, cols = 3000, rank = 40;
        var (rows, _) = LowRankRows(n, cols, rank, 5);
        var exact = new double[n * n];
        var single = new double[n * n];
        Gemm.GramOfRows(rows, n, cols, exact, parallel: false);
        SingleGram.GramOfRows(rows, n, cols, single, parallel: true);
        double worst = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                worst = Math.Max(worst, Math.Abs(exact[i * n + j] - single[i * n + j]) / Math.Sqrt(exact[i * n + i] * exact[j * n + j]));
        Assert.True(worst < 1e-6, $"largest entry error {worst:E2} of √(GᵢᵢGⱼⱼ)");

        // Spectra: σ/σ₁ within 1e-5 over the structural spectrum (the 40 strong values and the noise floor).
        var a = SymmetricTridiagonal.Reduce(exact, n, parallel: false).Eigenvalues().Select(l => Math.Sqrt(Math.Max(l, 0))).OrderDescending().ToArray();
        var b = SymmetricTridiagonal.Reduce(single, n, parallel: false).Eigenvalues().Select(l => Math.Sqrt(Math.Max(l, 0))).OrderDescending().ToArray();
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(a[i] / a[0] - b[i] / b[0]) < 1e-5, $"σ{i}/σ1: {a[i] / a[0]} vs {b[i] / b[0]}");
        Assert.True(a[rank - 1] / a[0] > 10 * (a[rank] / a[0]), "the test matrix should have a clear rank-40 gap");
    }

    [Fact]
    public void ReductionReadingFloat32CopiesAgreesWithFloat64()
    {
        // Wide enough (≥ 384) for the split matrix-vector products and several panels; a float64 Gram as the reference.
        const int n = 520, cols = 1600, rank = 60;
        var (_, stored) = LowRankRows(n, cols, rank, 9);
        var g = new double[n * n];
        Gemm.GramOfRows(stored, n, cols, g, parallel: false);
        var exact = (double[])g.Clone();
        var single = (double[])g.Clone();
        var a = SymmetricTridiagonal.Reduce(exact, n, parallel: true, singleProducts: false);
        var b = SymmetricTridiagonal.Reduce(single, n, parallel: true, singleProducts: true);
        Assert.NotEqual(a.OffDiagonal, b.OffDiagonal); // the float32 copies were read
        var la = a.Eigenvalues();
        var lb = b.Eigenvalues();
        double worst = 0;
        for (int i = 0; i < n; i++) worst = Math.Max(worst, Math.Abs(la[i] - lb[i]) / la[0]);
        Assert.True(worst < 1e-6, $"largest eigenvalue error {worst:E2} of λ1");
        for (int i = 0; i < rank; i++)
            Assert.True(Math.Abs(Math.Sqrt(la[i] / la[0]) - Math.Sqrt(lb[i] / lb[0])) < 1e-6, $"σ{i}/σ1");

        // Q·T·Qᵀ rebuilds G: the reflectors and T stay consistent with each other.
        var q = b.FormQ(parallel: true);
        double gmax = g.Max(Math.Abs), err = 0;
        var qt = new double[n * n];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
            {
                double s = b.Diagonal[c] * q[r * n + c];
                if (c > 0) s += b.OffDiagonal[c - 1] * q[r * n + c - 1];
                if (c < n - 1) s += b.OffDiagonal[c] * q[r * n + c + 1];
                qt[r * n + c] = s;
            }
        for (int r = 0; r < n; r += 7)
            for (int c = 0; c < n; c += 5)
            {
                double s = 0;
                for (int k = 0; k < n; k++) s += qt[r * n + k] * q[c * n + k];
                err = Math.Max(err, Math.Abs(s - g[r * n + c]) / gmax);
            }
        Assert.True(err < 1e-5, $"‖QTQᵀ − G‖max / max|G| = {err:E2}");
        WorkArrays.Return(q);
    }

    [Fact]
    public void FloatQAgreesWithFloat64Q()
    {
        // Several 64-reflector blocks (the last one partial) and chunks split across threads; Q widened in place.
        const int n = 455, cols = 1400, rank = 50;
        var (_, stored) = LowRankRows(n, cols, rank, 11);
        var g = new double[n * n];
        Gemm.GramOfRows(stored, n, cols, g, parallel: false);
        var t = SymmetricTridiagonal.Reduce((double[])g.Clone(), n, parallel: true, singleProducts: true);
        var q64 = t.FormQ(parallel: true, default, single: false)!;
        var q32 = t.FormQ(parallel: true, default, single: true)!;
        Assert.NotEqual(q64.AsSpan(0, n * n).ToArray(), q32.AsSpan(0, n * n).ToArray()); // float32 blocks were applied
        double worst = 0, sumDiff = 0;
        for (int i = 0; i < n * n; i++)
        {
            double d = Math.Abs(q64[i] - q32[i]);
            worst = Math.Max(worst, d);
            sumDiff += d;
            Assert.Equal((double)(float)q32[i], q32[i]); // every value is a widened float32
        }
        Assert.True(worst < 2e-5, $"largest |ΔQ| {worst:E2}");
        Assert.True(sumDiff > 0 && worst > 1e-9, "float32 rounding should show");
        // Orthogonality of the float32 Q's rows (sampled).
        double orth = 0;
        for (int r = 0; r < n; r += 13)
            for (int c = 0; c < n; c += 11)
            {
                double s = 0;
                for (int k = 0; k < n; k++) s += q32[r * n + k] * q32[c * n + k];
                orth = Math.Max(orth, Math.Abs(s - (r == c ? 1 : 0)));
            }
        Assert.True(orth < 1e-5, $"‖QQᵀ − I‖max {orth:E2}");
        WorkArrays.Return(q64);
        WorkArrays.Return(q32);
    }

    [Fact]
    public void SingleGramIsFloat32PanelSumsAddedInFloat64BitForBit()
    {
        if (!SingleGram.Available) return;
        // 9 depth panels (two groups of four, then one partial panel); 70 rows: partial slivers and block rows.
        const int n = 70, cols = 256 * 8 + 100;
        var (rows, stored) = LowRankRows(n, cols, 12, 13);
        var c = new double[n * n];
        SingleGram.GramOfRows(rows, n, cols, c, parallel: true);
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double sum = 0;
                for (int p0 = 0; p0 < cols; p0 += 256)
                {
                    float f = 0;
                    for (int p = p0; p < Math.Min(cols, p0 + 256); p++)
                        f = MathF.FusedMultiplyAdd((float)stored[i * cols + p], (float)stored[j * cols + p], f);
                    sum += f;
                }
                Assert.Equal(sum, c[i * n + j]);
                Assert.Equal(sum, c[j * n + i]);
            }
    }
}
