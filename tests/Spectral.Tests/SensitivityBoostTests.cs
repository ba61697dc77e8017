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

    // A head-like group: 24 wide in steps of 16 (16 or 24 kept), its curve falling by 0.8 a channel.
    private static readonly double[] Falling = [.. Enumerable.Range(0, 24).Select(c => Math.Pow(0.8, c))];

    private static PlanningGroup Stepped(int step) => new(24, FilterSpectrum.FromSingularValues(24, 24, Falling), MinKeep: 6, Fixed: false, RoundTo: step);

    [Fact]
    public void The_next_step_is_decided_at_the_first_count_that_rounds_above_the_keep()
    {
        // Step 16: 20 rounds to 16 (a tie between 16 and the width goes down to the multiple), 21 to 24.
        Assert.Equal(16, BudgetSolver.Round(Stepped(16), 20));
        Assert.Equal(24, BudgetSolver.Round(Stepped(16), 21));
        Assert.Equal(21, BudgetSolver.NextStepCount(Stepped(16), 16));
        Assert.Equal(14, BudgetSolver.NextStepCount(Stepped(4), 12));
        Assert.Equal(11, BudgetSolver.NextStepCount(Stepped(1), 10));
        Assert.Equal(0, BudgetSolver.NextStepCount(Stepped(16), 24));
    }

    [Fact]
    public void A_boost_one_step_below_the_whole_group_moves_to_that_step_undamped()
    {
        // Step 16 at 16: the next step is the whole group, decided at unit 20: 2² × e(16)/e(20).
        Assert.Equal(4 * Math.Pow(0.8, -4), SensitivityBoost.AtNextStep(2, Falling, Stepped(16), 16), 9);
        // Step 4 at 20 and step 1 at 23: the next step is the whole group too, decided at units 21 and 23.
        Assert.Equal(4 / 0.8, SensitivityBoost.AtNextStep(2, Falling, Stepped(4), 20), 9);
        Assert.Equal(4, SensitivityBoost.AtNextStep(2, Falling, Stepped(1), 23), 9);
        // Steps short of the whole group keep the boost as measured.
        Assert.Equal(2, SensitivityBoost.AtNextStep(2, Falling, Stepped(4), 12));
        Assert.Equal(2, SensitivityBoost.AtNextStep(2, Falling, Stepped(1), 12));
        // No boost, a whole group, and the cap.
        Assert.Equal(1, SensitivityBoost.AtNextStep(1, Falling, Stepped(16), 16));
        Assert.Equal(3, SensitivityBoost.AtNextStep(3, Falling, Stepped(16), 24));
        Assert.Equal(SensitivityBoost.MaxBoost, SensitivityBoost.AtNextStep(10, Falling, Stepped(16), 16));
        var e = Assert.Throws<ArgumentException>(() => SensitivityBoost.AtNextStep(0.5, Falling, Stepped(16), 16));
        Assert.Contains("0.5", e.Message);
    }

    [Fact]
    public void The_moved_boost_keeps_a_coarse_stepped_group_whole_where_the_measured_one_does_not()
    {
        // The head-like group beside a 96-wide group of step 1 with a linear curve; 8 % of the filters go.
        var wide = new PlanningGroup(96, FilterSpectrum.FromSingularValues(96, 96, [.. Enumerable.Range(0, 96).Select(c => 1 - c / 96.0)]), MinKeep: 5, Fixed: false, RoundTo: 1);
        int HeadKeeps(double weight) => new BudgetSolver().Solve([Stepped(16) with { Weight = weight }, wide], null, null, BudgetTarget.Filters, 0.08, 1).Keep[0];
        Assert.Equal(16, HeadKeeps(1));
        Assert.Equal(16, HeadKeeps(2));
        Assert.Equal(24, HeadKeeps(SensitivityBoost.AtNextStep(2, Falling, Stepped(16), 16)));
    }
}
