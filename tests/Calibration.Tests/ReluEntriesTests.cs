namespace OnnxSlim.Calibration.Tests;

public sealed class ReluEntriesTests
{
    /// <summary>Float32 values around zero, with exact zeros and signed zeros mixed in (the ReLU's edges).</summary>
    private static float[] Values(Random rng, int n) =>
        [.. Enumerable.Range(0, n).Select(i => i % 11 == 0 ? 0f : i % 13 == 0 ? -0f : (float)((rng.NextDouble() - 0.45) * 4))];

    /// <summary>
    /// The vectorised error sums are the scalar loop's bits (the loop LayerFit ran before, per entry and in row order),
    /// continuing from running sums: lengths that are not a multiple of the four lanes, a negative scale.
    /// </summary>
    [Theory]
    [InlineData(1, 1.7)]
    [InlineData(7, -0.8)]
    [InlineData(256, 1.3)]
    [InlineData(203, 0.37)]
    public void Error_is_the_scalar_sum_bit_for_bit(int count, double a)
    {
        var rng = new Random(count);
        var tau = Values(rng, count);
        var offset = Values(rng, count);
        var prediction = Values(rng, count);
        double e = 0.125, z2 = 3.5, eRef = e, z2Ref = z2;
        for (int r = 0; r < count; r++)
        {
            double z = Math.Max(a * tau[r] + offset[r], 0), zp = Math.Max(a * prediction[r] + offset[r], 0);
            eRef += (zp - z) * (zp - z);
            z2Ref += z * z;
        }
        ReluEntries.Error(tau, offset, prediction, a, ref e, ref z2);
        Assert.Equal(BitConverter.DoubleToInt64Bits(eRef), BitConverter.DoubleToInt64Bits(e));
        Assert.Equal(BitConverter.DoubleToInt64Bits(z2Ref), BitConverter.DoubleToInt64Bits(z2));
    }

    /// <summary>
    /// The vectorised hard-gate error sums are the scalar loop's bits (LayerFit's loop before, through HardGate.Apply):
    /// entries below the gate's floor, inside its ramp, past its top, and (a = 1, zero offsets) exactly at the floor.
    /// </summary>
    [Theory]
    [InlineData(1, 1.7, 3.0, 6.0)]
    [InlineData(300, 1.0, 3.0, 6.0)]
    [InlineData(7, -0.8, 3.0, 6.0)]
    [InlineData(256, 1.3, 0.5, 1.0)]
    [InlineData(203, 0.37, 2.5, 5.0)]
    public void Gate_error_is_the_scalar_sum_bit_for_bit(int count, double a, double shift, double top)
    {
        var rng = new Random(count + 7);
        var gate = new HardGate(shift, top);
        // Scaled so the pre-activations cross the floor (−k) and the top (t − k); some entries are −k exactly.
        float[] Spread() => [.. Values(rng, count).Select((v, i) => i % 17 == 5 ? (float)-shift : v * (float)(top + shift))];
        var tau = Spread();
        var offset = Values(rng, count);
        var prediction = Spread();
        double e = 0.25, z2 = 1.5, eRef = e, z2Ref = z2;
        for (int r = 0; r < count; r++)
        {
            double z = gate.Apply(a * tau[r] + offset[r]), zp = gate.Apply(a * prediction[r] + offset[r]);
            eRef += (zp - z) * (zp - z);
            z2Ref += z * z;
        }
        ReluEntries.GateError(tau, offset, prediction, a, gate, ref e, ref z2);
        Assert.Equal(BitConverter.DoubleToInt64Bits(eRef), BitConverter.DoubleToInt64Bits(e));
        Assert.Equal(BitConverter.DoubleToInt64Bits(z2Ref), BitConverter.DoubleToInt64Bits(z2));
    }

    /// <summary>The vectorised targets are the scalar rule's bits, for a ReLU (floor 0) and a hard gate's floor, every branch taken.</summary>
    [Theory]
    [InlineData(9, 1.7, 0.0)]
    [InlineData(256, -0.8, 0.0)]
    [InlineData(203, 0.37, -0.5)]
    public void Retarget_is_the_scalar_rule_bit_for_bit(int count, double a, double floor)
    {
        var rng = new Random(count + 1);
        var tau = Values(rng, count);
        var offset = Values(rng, count);
        var prediction = Values(rng, count);
        var expected = (float[])prediction.Clone();
        double inverse = 1 / a;
        int kept = 0, pulled = 0, exact = 0;
        for (int r = 0; r < count; r++)
        {
            double t = tau[r], c = offset[r];
            if (a * t + c >= floor) { expected[r] = (float)t; kept++; }
            else if (a * expected[r] + c > floor) { expected[r] = (float)((floor - c) * inverse); pulled++; }
            else exact++;
        }
        ReluEntries.Retarget(tau, offset, prediction, a, inverse, floor);
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), prediction.Select(BitConverter.SingleToInt32Bits));
        if (count > 100) Assert.True(kept > 0 && pulled > 0 && exact > 0, $"branches: {kept} kept, {pulled} pulled, {exact} exact");
    }
}
