namespace OnnxSlim.Spectral.Tests;

public sealed class SensitivityBoostTests
{
    [Fact]
    public void Groups_whose_damage_outruns_their_curve_are_weighed_up_by_the_root_of_how_far_and_none_down()
    {
        // Ratios damage/local: 1, 4, 16 (geometric mean 4); group 3 did no damage and is left out.
        var damage = new Dictionary<int, double> { [0] = 0.01, [1] = 0.04, [2] = 0.16, [3] = 0 };
        var local = new Dictionary<int, double> { [0] = 0.01, [1] = 0.01, [2] = 0.01, [3] = 0.01 };
        var boost = SensitivityBoost.From(damage, local);
        Assert.Equal([0, 1, 2], boost.Keys.Order());
        Assert.Equal(1, boost[0], 12);
        Assert.Equal(1, boost[1], 12);
        Assert.Equal(2, boost[2], 12);
    }

    [Fact]
    public void A_curve_that_predicts_no_error_gives_the_largest_weight_not_infinity()
    {
        var boost = SensitivityBoost.From(new Dictionary<int, double> { [0] = 0.01, [1] = 0.01 }, new Dictionary<int, double> { [0] = 0.01, [1] = 0 });
        Assert.Equal(SensitivityBoost.MaxBoost, boost[1]);
        Assert.Equal(1, boost[0]);
    }

    [Fact]
    public void Bad_damage_is_refused_with_its_value()
    {
        var e = Assert.Throws<ArgumentException>(() => SensitivityBoost.From(new Dictionary<int, double> { [2] = double.NaN }, new Dictionary<int, double> { [2] = 0.1 }));
        Assert.Contains("NaN", e.Message);
    }
}
