using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral.Tests;

/// <summary>
/// What the data-free fold relies on when it reads the Gram a GEM selection kept instead of building its own: a
/// float32-product Gram's entry depends only on its two rows (not on where they sit or which rows are listed), and
/// <see cref="KeptGram"/> reads those entries, checks the rows bit for bit, and lets the buffer go.
/// </summary>
public sealed class KeptGramTests
{
    private sealed class Rows(double[] values, int cols) : IRowSource
    {
        public void Read(int row, int col, Span<double> destination) => values.AsSpan(row * cols + col, destination.Length).CopyTo(destination);
    }

    /// <summary>Rows a group's weights give: float32 values widened, times a per-row scale.</summary>
    private static double[] Values(int rows, int cols, int seed)
    {
        var syn = new Synthetic(seed);
        var values = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) values[i * cols + j] = (float)syn.Gauss() * (0.5 + (i % 5) * 0.25);
        return values;
    }

    [Fact]
    public void A_single_Gram_of_listed_rows_in_another_order_holds_the_full_Grams_entries_bit_for_bit()
    {
        if (!SingleGram.Available) return; // no float32 Grams here: nothing is kept
        const int n = 90, cols = 700; // 700 columns: three depth panels, the last one partial; 90 rows: partial slivers
        var values = Values(n, cols, 7);
        var full = new double[n * n];
        SingleGram.GramOfRows(new Rows(values, cols), n, cols, full, parallel: true);
        // Kept ones then removed ones, as the fold lists them; some rows (merged exactly) not listed at all.
        int[] listed = [.. Enumerable.Range(0, n).Where(i => i % 3 == 0), .. Enumerable.Range(0, n).Where(i => i % 3 == 1).Reverse()];
        var picked = new double[listed.Length * cols];
        for (int p = 0; p < listed.Length; p++) values.AsSpan(listed[p] * cols, cols).CopyTo(picked.AsSpan(p * cols, cols));
        var part = new double[listed.Length * listed.Length];
        SingleGram.GramOfRows(new Rows(picked, cols), listed.Length, cols, part, parallel: false);
        for (int p = 0; p < listed.Length; p++)
            for (int q = 0; q < listed.Length; q++)
                Assert.Equal(BitConverter.DoubleToInt64Bits(full[listed[p] * n + listed[q]]), BitConverter.DoubleToInt64Bits(part[p * listed.Length + q]));
    }

    [Fact]
    public void Kept_Gram_reads_the_entries_checks_the_rows_and_releases_the_buffer()
    {
        const int n = 40, cols = 300;
        var values = Values(n, cols, 3);
        var full = new double[n * n];
        Gemm.GramOfRows(values, n, cols, full, parallel: false);
        var expected = (double[])full.Clone();
        var lower = new LowerGram(full, n, singleProducts: true);
        // A reduction works in the upper triangle, diagonal included: the kept Gram reads the lower one and the diagonal's copy.
        for (int i = 0; i < n; i++)
            for (int k = i; k < n; k++) full[i * n + k] = double.NaN;
        var kept = new KeptGram(lower, new FilterMatrix(n, cols, new Rows(values, cols)));
        Assert.Equal((n, cols), (kept.Rows, kept.Cols));
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++) Assert.Equal(expected[i * n + k], kept[i, k]);

        Assert.True(kept.SameRows(new Rows((double[])values.Clone(), cols)));
        var other = (double[])values.Clone();
        other[17 * cols + 123] = Math.BitIncrement(other[17 * cols + 123]); // one value one ulp off
        Assert.False(kept.SameRows(new Rows(other, cols)));
        var negativeZero = (double[])values.Clone();
        values[5 * cols] = 0.0;
        negativeZero[5 * cols] = -0.0; // equal as numbers, not as bits
        Assert.False(kept.SameRows(new Rows(negativeZero, cols)));

        Assert.False(kept.Released);
        kept.Release();
        Assert.True(kept.Released);
        Assert.Throws<InvalidOperationException>(() => kept[0, 0]);
        Assert.Throws<InvalidOperationException>(() => kept.SameRows(new Rows(values, cols)));
        kept.Release(); // twice is harmless
        Assert.Throws<ArgumentException>(() => new KeptGram(new LowerGram(new double[n * n], n, singleProducts: false), new FilterMatrix(n, cols, new Rows(values, cols))));
    }
}
