using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

/// <summary>The packed float32 products: each entry one float32 fused multiply-add chain per panel of rows, the panels added in float64.</summary>
public class PackedProductsTests
{
    private static float[] Rows(int count, int seed)
    {
        var syn = new Synthetic(seed);
        var values = new float[count];
        // ReLU-like activations: a third exact zeros, the rest of mixed scale.
        for (int i = 0; i < values.Length; i++) values[i] = i % 3 == 0 ? 0 : (float)(syn.Gauss() * (1 + i % 5));
        return values;
    }

    /// <summary><paramref name="start"/> plus, panel by panel of Panel rows, the float32 chain Σ_r a·b from zero in row order, added in float64: what each entry must hold.</summary>
    private static double Expected(double start, float[] a, int i, float[] b, int j, int rows, int stride)
    {
        double sum = start;
        for (int p0 = 0; p0 < rows; p0 += PackedProducts.Panel)
        {
            float s = 0;
            for (int r = p0; r < Math.Min(rows, p0 + PackedProducts.Panel); r++) s = MathF.FusedMultiplyAdd(a[i * stride + r], b[j * stride + r], s);
            sum += s;
        }
        return sum;
    }

    [Theory]
    [InlineData(70, 45, 600, false)]   // edges in both widths (70 = 2·32 + 6, 45 = 32 + 13); panels 256 + 256 + 88
    [InlineData(75, 75, 1300, true)]   // A·Aᵀ lower part; two groups of four panels, the last one 20 rows
    public void Each_entry_is_one_float32_chain_per_panel_added_in_float64(int na, int nb, int rows, bool lowerOnly)
    {
        if (!PackedProducts.Available) return;
        int stride = rows + 3;
        var a = Rows(na * stride, 1);
        var b = lowerOnly ? a : Rows(nb * stride, 2);
        var start = Rows(na * nb, 3).Select(v => (double)v).ToArray();
        var c = (double[])start.Clone();
        PackedProducts.Accumulate(a, na, b, nb, rows, stride, c, nb, parallel: true, lowerOnly);
        for (int i = 0; i < na; i++)
            for (int j = 0; j < (lowerOnly ? i + 1 : nb); j++)
                Assert.Equal(Expected(start[i * nb + j], a, i, b, j, rows, stride), c[i * nb + j]);
        if (!lowerOnly) return;
        // Above the diagonal: whole sums where a tile reaches them, untouched elsewhere.
        for (int i = 0; i < na; i++)
            for (int j = i + 1; j < nb; j++)
                Assert.True(c[i * nb + j] == start[i * nb + j] || c[i * nb + j] == Expected(start[i * nb + j], a, i, b, j, rows, stride), $"C[{i},{j}]");
    }

    [Fact]
    public void The_sums_do_not_depend_on_the_threads()
    {
        if (!PackedProducts.Available) return;
        const int na = 300, nb = 200, rows = 700;
        var a = Rows(na * rows, 4);
        var b = Rows(nb * rows, 5);
        var parallel = new double[na * nb];
        var serial = new double[na * nb];
        PackedProducts.Accumulate(a, na, b, nb, rows, rows, parallel, nb, parallel: true, lowerOnly: false);
        PackedProducts.Accumulate(a, na, b, nb, rows, rows, serial, nb, parallel: false, lowerOnly: false);
        Assert.Equal(serial, parallel);
    }

    [Fact]
    public void Wide_blocked_products_go_through_the_packed_tiles()
    {
        if (!PackedProducts.Available) return;
        const int n = 96, rows = 300;
        var x = Rows(n * rows, 6);
        var blocked = new double[n * n];
        var packed = new double[n * n];
        BlockedProducts.Accumulate(x, n, x, n, rows, rows, blocked, n, lowerOnly: true);
        PackedProducts.Accumulate(x, n, x, n, rows, rows, packed, n, parallel: true, lowerOnly: true);
        Assert.Equal(packed, blocked);
    }
}
