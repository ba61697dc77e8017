namespace OnnxSlim.Spectral.Tests;

/// <summary>The leave-one-out losses GEM ranks by, against removing the rows and summing σ (MathNet SVD).</summary>
public class LossTests
{
    public static TheoryData<string> Kinds => new() { "gauss", "lowrank", "families", "tall" };

    private static FilterMatrix Make(string kind, int seed) => kind switch
    {
        "gauss" => new Synthetic(seed).Gaussian(24, 40),
        "lowrank" => new Synthetic(seed).LowRankPlusNoise(24, 40, 6, 0.05),
        "families" => new Synthetic(seed).Families(24, 40, 14, 0.1, out _),
        _ => new Synthetic(seed).Gaussian(24, 6),
    };

    private static double BruteLoss(FilterMatrix m, int[] before, int j)
    {
        var kept = Enumerable.Range(0, m.Rows).Except(before).ToArray();
        return Synthetic.NuclearNorm(m, kept) - Synthetic.NuclearNorm(m, kept.Where(r => r != j).ToArray());
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void FastLeaveOneOutLossIsAccurate(string kind)
    {
        var m = Make(kind, 5);
        double nuc = Synthetic.NuclearNorm(m, Enumerable.Range(0, m.Rows).ToArray());
        for (int j = 0; j < m.Rows; j++)
        {
            double exact = BruteLoss(m, [], j);
            double fast = GemSelector.QuadratureLoss(m, j, []);
            Assert.True(Math.Abs(fast - exact) <= 1e-3 * exact + 1e-6 * nuc, $"row {j}: quadrature {fast} vs brute force {exact}");
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void LossAfterRemovingOthersIsAccurate(string kind)
    {
        var m = Make(kind, 6);
        double nuc = Synthetic.NuclearNorm(m, Enumerable.Range(0, m.Rows).ToArray());
        int[][] sets = [[3], [0, 7], [2, 5, 11, 17], [1, 4, 8, 9, 12, 20]];
        foreach (var d in sets)
            foreach (var j in new[] { 6, 10, 23 })
            {
                double exact = BruteLoss(m, d, j);
                double fast = GemSelector.QuadratureLoss(m, j, d);
                Assert.True(Math.Abs(fast - exact) <= 1e-3 * exact + 1e-6 * nuc,
                    $"row {j} after [{string.Join(",", d)}]: Schur quadrature {fast} vs brute force {exact}");
            }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ExactGreedyLossesMatchBruteForce(string kind)
    {
        var m = Make(kind, 7);
        var g = new double[m.Rows * m.Rows];
        for (int a = 0; a < m.Rows; a++)
            for (int b = 0; b < m.Rows; b++)
                g[a * m.Rows + b] = System.Numerics.Tensors.TensorPrimitives.Dot(m.Row(a), m.Row(b));
        var losses = ExactGreedySelector.LeaveOneOutLosses(g, m.Rows, Enumerable.Range(0, m.Rows).ToList());
        for (int j = 0; j < m.Rows; j++)
        {
            double exact = BruteLoss(m, [], j);
            Assert.True(Math.Abs(losses[j] - exact) <= 1e-7 * Math.Max(exact, 1), $"row {j}: {losses[j]} vs {exact}");
        }
    }
}
