using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxSlim.Calibration.Tests;

public sealed class FiniteValuesTests
{
    /// <summary>The first non-finite value is found wherever it lies (in a vector, past the last whole vector), and named with its sample.</summary>
    [Theory]
    [InlineData(0, float.NaN, "NaN", 10)]
    [InlineData(13, float.PositiveInfinity, "+inf", 11)]
    [InlineData(37, float.NegativeInfinity, "-inf", 13)]
    // Past the first blocks of 128 values, in a block and past the last whole block.
    [InlineData(131, float.PositiveInfinity, "+inf", 20, 400)]
    [InlineData(300, float.NaN, "NaN", 35, 400)]
    [InlineData(389, float.NegativeInfinity, "-inf", 42, 390)]
    public void The_first_non_finite_value_is_named_with_its_sample(int at, float bad, string name, int sample, int length = 38)
    {
        var data = Enumerable.Range(0, length).Select(i => i % 3 == 0 ? float.MaxValue : (float)i - 19.5f).ToArray();
        data[at] = bad;
        if (at < length - 8) data[^1] = float.NaN; // a later one is not the one reported
        var e = Assert.Throws<ArgumentException>(() => FiniteValues.Check("pruned", "v", data, 10, 12, TensorElementType.Float));
        Assert.Equal($"the pruned model computes {name} in 'v' on calibration sample {sample}", e.Message);
    }

    [Fact]
    public void Finite_values_pass()
    {
        var data = Enumerable.Range(0, 41).Select(i => i % 2 == 0 ? float.MaxValue : -float.Epsilon).ToArray();
        FiniteValues.Check("original", "v", data, 0, 41, TensorElementType.Float);
    }
}
