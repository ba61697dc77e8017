using OnnxSlim.GraphIO;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>
/// The paths wide groups take through the data-free fold: effective filters read without a stored matrix, the fit's
/// inner products from the rows' Gram, and all additions to one tensor applied in one pass.
/// </summary>
public sealed class WideFoldTests
{
    /// <summary>x → Conv 3→16 (3×3) → BatchNorm → Relu → Conv 16→8 (1×1) → y; the first conv's group and its filters.</summary>
    private static (OnnxModel Model, ChannelGroupSet Groups, ChannelGroup Group, EffectiveFilters Filters) ConvBn()
    {
        var b = new GraphBuilder(seed: 11);
        var x = b.Input("x", -1, 3, 10, 10);
        var h = b.Relu(b.BatchNorm(b.Conv(x, 3, 16), 16));
        b.Output(b.Conv(h, 16, 8, k: 1), -1, 8, 10, 10);
        var model = b.Model();
        var groups = Harness.Analyze(model);
        var group = groups.First(g => g.Prunable && g.Width == 16);
        float[] Floats(WeightRef w) => w.Tensor.ToFloats();
        var filters = EffectiveFilters.Build(model.Graph, group, new GroupConstants(model.Graph, group, Floats), Floats, offsetWeight: 0.5)!;
        return (model, groups, group, filters);
    }

    [Fact]
    public void Streamed_rows_are_the_stored_rows_bit_for_bit()
    {
        var (model, _, _, filters) = ConvBn();
        using var _m = model;
        Assert.Equal(28, filters.Cols); // 27 weights and the offset column
        var window = new double[9];
        for (int j = 0; j < filters.Width; j++)
        {
            var row = filters.Row(j).ToArray();
            var read = new double[filters.Cols];
            filters.Read(j, 0, read);
            Assert.Equal(row, read);
            filters.Read(j, 20, window.AsSpan(0, 8)); // a window that ends on the offset column
            Assert.Equal(row[20..28], window[..8]);
            Assert.False(filters.IsZero(j));
        }
    }

    [Fact]
    public void Fit_from_the_Gram_matches_the_dot_product_fit()
    {
        var (model, _, _, filters) = ConvBn();
        using var _m = model;
        int[] keep = [0, 2, 3, 5, 7, 8, 11, 12, 14];
        int[] removed = [1, 4, 6, 9, 10, 13, 15];
        var dots = new FilterFit(filters, keep, terms: 4, ridge: 1e-3, removed);
        var gram = new FilterFit(filters, keep, terms: 4, ridge: 1e-3, removed, gramMinCost: 0);
        Assert.False(dots.FromGram);
        Assert.True(gram.FromGram);
        foreach (int j in removed)
        {
            var (a, an) = dots.Fit(j);
            var (b, bn) = gram.Fit(j);
            foreach (var (x, y) in new[] { (a, b), (an, bn) })
            {
                Assert.Equal(x is null, y is null);
                if (x is null || y is null) continue;
                Assert.Equal(x.Kept, y.Kept);
                for (int t = 0; t < x.Coefficients.Length; t++) Assert.Equal(x.Coefficients[t], y.Coefficients[t], 1e-9);
                Assert.Equal(x.Match, y.Match, 1e-9);
            }
        }
        // A channel outside the Gram's rows is refused, not read as a wrong entry.
        var partial = new FilterFit(filters, keep, terms: 4, ridge: 1e-3, [1], gramMinCost: 0);
        Assert.Throws<ArgumentException>(() => partial.Fit(4));
    }

    [Fact]
    public void Only_the_fits_asked_for_are_taken_and_they_are_the_same_bits()
    {
        var (model, _, _, filters) = ConvBn();
        using var _m = model;
        int[] keep = [0, 2, 3, 5, 7, 8, 11, 12, 14];
        int[] removed = [1, 4, 6, 9, 10, 13, 15];
        FitsNeeded[] needed = [FitsNeeded.None, FitsNeeded.Signed, FitsNeeded.NonNegative, FitsNeeded.Both, FitsNeeded.None, FitsNeeded.NonNegative, FitsNeeded.Signed];
        var fit = new FilterFit(filters, keep, terms: 4, ridge: 1e-3, removed);
        var all = fit.FitAll(removed);
        var some = fit.FitAll(removed, needed);
        Assert.Throws<ArgumentException>(() => fit.FitAll(removed, needed[1..]));
        for (int r = 0; r < removed.Length; r++)
        {
            var (signed, nonNegative) = some[r];
            Assert.Equal((needed[r] & FitsNeeded.Signed) != 0, signed is not null);
            Assert.Equal((needed[r] & FitsNeeded.NonNegative) != 0, nonNegative is not null);
            foreach (var (x, y) in new[] { (all[r].Signed, signed), (all[r].NonNegative, nonNegative) })
            {
                if (y is null) continue;
                Assert.Equal(x!.Kept, y.Kept);
                Assert.Equal(x.Coefficients, y.Coefficients);
                Assert.Equal(x.Match, y.Match);
            }
        }
    }

    [Fact]
    public void Fits_in_blocks_are_the_fits_one_by_one_bit_for_bit()
    {
        var (model, _, _, filters) = ConvBn();
        using var _m = model;
        int[] keep = [0, 2, 3, 5, 7, 8, 11, 12, 14];
        int[] removed = [1, 4, 6, 9, 10, 13, 15];
        foreach (double gramMinCost in new[] { FilterFit.GramMinCost, 0 })
        {
            var fit = new FilterFit(filters, keep, terms: 4, ridge: 1e-3, removed, gramMinCost);
            var all = fit.FitAll(removed);
            Assert.Equal(removed.Length, all.Length);
            for (int r = 0; r < removed.Length; r++)
            {
                var (a, an) = fit.Fit(removed[r]);
                var (b, bn) = all[r];
                foreach (var (x, y) in new[] { (a, b), (an, bn) })
                {
                    Assert.Equal(x is null, y is null);
                    if (x is null || y is null) continue;
                    Assert.Equal(x.Kept, y.Kept);
                    Assert.Equal(x.Coefficients, y.Coefficients);
                    Assert.Equal(x.Match, y.Match);
                }
                Assert.NotNull(a);
            }
        }
    }

    [Fact]
    public void Candidates_are_the_first_of_all_candidates_sorted()
    {
        var random = new Random(3);
        for (int trial = 0; trial < 200; trial++)
        {
            int kept = 1 + random.Next(60), terms = 1 + random.Next(10);
            var cosines = new double[kept];
            var norms = new double[kept];
            for (int t = 0; t < kept; t++)
            {
                // Few distinct values: ties, zeros, both signs and zero norms are common.
                cosines[t] = random.Next(9) switch { 0 => 0, var k => (k - 4.5) / 5 };
                norms[t] = random.Next(8) == 0 ? 0 : 1;
            }
            foreach (bool nonNegative in new[] { false, true })
            {
                int[] expected = [.. Enumerable.Range(0, kept)
                    .Where(t => norms[t] > 0 && (nonNegative ? cosines[t] > 0 : cosines[t] != 0))
                    .OrderByDescending(t => nonNegative ? cosines[t] : Math.Abs(cosines[t])).ThenBy(t => t)
                    .Take(terms)];
                Assert.Equal(expected, FilterFit.Candidates(cosines, norms, terms, nonNegative));
            }
        }
    }

    [Fact]
    public void Additions_split_between_cores_equal_additions_one_by_one()
    {
        // 256 slabs × 520 additions × 9 elements: past the size from which AddScaledAll splits the slabs between cores.
        var random = new Random(9);
        long[] dims = [256, 600, 9];
        var data = new float[256 * 600 * 9];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(random.NextDouble() - 0.5);
        var additions = new (long From, long To, long Count, double Ratio)[520];
        for (int a = 0; a < additions.Length; a++)
        {
            // Chains and repeated targets among them (targets and sources drawn from the same channels).
            long count = 1 + random.Next(2);
            additions[a] = (random.Next(598), random.Next(598), count, random.NextDouble() * 4 - 2);
        }
        var expected = (float[])data.Clone();
        foreach (var (from, to, count, ratio) in additions) TensorSlicer.AddScaled(expected, dims, 1, from, to, count, ratio);
        var actual = (float[])data.Clone();
        TensorSlicer.AddScaledAll(actual, dims, 1, additions);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Additions_in_one_pass_equal_additions_one_by_one()
    {
        var random = new Random(5);
        long[] dims = [7, 10, 3];
        var data = new float[7 * 10 * 3];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(random.NextDouble() - 0.5);
        // Chained and repeated targets: channel 2 receives from 5, then passes on to 1, then receives again.
        (long From, long To, long Count, double Ratio)[] additions = [(5, 2, 1, 0.3), (2, 1, 1, -1.7), (8, 2, 2, 0.11), (0, 9, 1, 2.5), (5, 2, 1, 1e-3)];
        var expected = (float[])data.Clone();
        foreach (var (from, to, count, ratio) in additions) TensorSlicer.AddScaled(expected, dims, 1, from, to, count, ratio);
        var actual = (float[])data.Clone();
        TensorSlicer.AddScaledAll(actual, dims, 1, additions);
        Assert.Equal(expected, actual);
        Assert.NotEqual(data, actual);
    }
}
