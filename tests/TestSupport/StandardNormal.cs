namespace OnnxSlim.TestSupport;

/// <summary>Standard normal draws (Box–Muller) from a seeded <see cref="Random"/>: two uniforms a draw, so a seed gives the same values in every test.</summary>
public static class StandardNormal
{
    public static double Next(Random random) => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    public static double[] Vector(Random random, int count)
    {
        var values = new double[count];
        for (int i = 0; i < count; i++) values[i] = Next(random);
        return values;
    }
}
