namespace OnnxSlim.Spectral.Tests;

/// <summary>Screening several rows in one pass, alone or inside a removal's whitening, is the bits of one row at a time.</summary>
public class WhitenedRemovalsTests
{
    [Fact]
    public void Rows_screened_together_or_while_adding_are_the_bits_of_one_row_at_a_time()
    {
        const int n = 300;
        var rng = new Random(11);
        double[] Row() => [.. Enumerable.Range(0, n).Select(_ => (rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-2, 3)))];
        var alone = new WhitenedRemovals(n);
        var fused = new WhitenedRemovals(n);
        // Rows of Q to screen, with starts that differ (some past removals the others need).
        var rows = Enumerable.Range(0, 6).Select(_ => Row()).ToArray();
        var single = rows.Select(r => { var f = new float[n]; WhitenedRemovals.ToSingle(r, f); return f; }).ToArray();
        int compared = 0, nonzero = 0, zeros = 0;
        // v = M·q for a fixed positive diagonal M, as (T + s)⁻¹q is for a positive definite T + s.
        var m = Enumerable.Range(0, n).Select(_ => 0.5 + rng.NextDouble()).ToArray();
        double[] q = [];
        for (int step = 0; step < 23; step++)
        {
            // a repeated removal is explained by the earlier ones: stored as null, whose coefficients are 0
            if (step != 12) q = Row();
            var v = q.Select((x, i) => m[i] * x).ToArray();
            int[] from = [.. Enumerable.Range(0, rows.Length).Select(b => Math.Max(0, step - 3 * b))];
            var squares = Enumerable.Range(0, rows.Length).Select(_ => new double[n]).ToArray();
            alone.Add(q, v);
            fused.Add(q, v, single, from, squares);
            var together = Enumerable.Range(0, rows.Length).Select(_ => new double[n]).ToArray();
            alone.Coefficients(single, from, together);
            for (int b = 0; b < rows.Length; b++)
            {
                var expected = new double[n];
                alone.Coefficients(single[b], from[b], expected);
                for (int k = 0; k < alone.Count - from[b]; k++)
                {
                    Assert.Equal(BitConverter.DoubleToInt64Bits(expected[k]), BitConverter.DoubleToInt64Bits(squares[b][k]));
                    Assert.Equal(BitConverter.DoubleToInt64Bits(expected[k]), BitConverter.DoubleToInt64Bits(together[b][k]));
                    compared++;
                    if (expected[k] != 0) nonzero++; else zeros++;
                }
            }
        }
        Assert.Equal(alone.Count, fused.Count);
        Assert.True(compared > 500 && nonzero > 400 && zeros > 0, $"{compared} compared, {nonzero} non-zero, {zeros} zero");
    }
}
