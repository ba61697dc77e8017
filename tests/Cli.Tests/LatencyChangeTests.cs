using OnnxSlim.Cli.Reporting;

namespace OnnxSlim.Cli.Tests;

public sealed class LatencyChangeTests
{
    [Theory]
    [InlineData(3.0, 2.0, "1.50x faster")]
    [InlineData(2.0, 2.0, "1.00x faster")]
    [InlineData(1.73, 1.84, "1.06x slower")] // ResNet-50 on an H200, batch 1: the pruned model lost time
    [InlineData(0.0, 1.0, "")]
    [InlineData(1.0, double.NaN, "")]
    public void A_slower_model_is_called_slower_not_a_fraction_faster(double before, double after, string expected) =>
        Assert.Equal(expected, LatencyChange.Describe(before, after));

    [Fact]
    public void The_html_report_uses_its_own_times_sign() =>
        Assert.Equal("2.00× slower", LatencyChange.Describe(1, 2, "×"));
}
