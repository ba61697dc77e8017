namespace OnnxSlim.Rewriter;

/// <summary>Tests of "vector j is r times vector i" for merging, with a relative tolerance fit for float32 weights.</summary>
internal static class Proportion
{
    public const double Tolerance = 1e-4;

    /// <summary>The least-squares r with j ≈ r·i, or NaN when i is zero or j is not a multiple of i.</summary>
    public static double Of(ReadOnlySpan<float> j, ReadOnlySpan<float> i)
    {
        if (j.Length != i.Length || j.Length == 0) return double.NaN;
        double dot = 0, ii = 0;
        for (int k = 0; k < j.Length; k++)
        {
            dot += (double)j[k] * i[k];
            ii += (double)i[k] * i[k];
        }
        if (ii == 0) return double.NaN;
        double r = dot / ii;
        return Holds(j, i, r) ? r : double.NaN;
    }

    /// <summary>Whether j ≈ r·i element-wise (also when both are zero).</summary>
    public static bool Holds(ReadOnlySpan<float> j, ReadOnlySpan<float> i, double r)
    {
        if (j.Length != i.Length || double.IsNaN(r)) return false;
        double residual = 0, jj = 0, ii = 0;
        for (int k = 0; k < j.Length; k++)
        {
            double d = j[k] - r * i[k];
            residual += d * d;
            jj += (double)j[k] * j[k];
            ii += (double)i[k] * i[k];
        }
        double scale = Math.Sqrt(jj) + Math.Abs(r) * Math.Sqrt(ii);
        return Math.Sqrt(residual) <= Tolerance * scale + 1e-30;
    }

    public static bool Near(double a, double b) => Math.Abs(a - b) <= Tolerance * (Math.Abs(a) + Math.Abs(b)) + 1e-30;

    /// <summary>The ratio passed by a positively homogeneous function f(r·x) = r·f(x), r > 0 (ReLU, pooling).</summary>
    public static double Positive(double? r) => r is { } v && v > 0 ? v : double.NaN;

    /// <summary>The ratio passed by an arbitrary channel-wise function: only exact copies (r = 1) stay copies.</summary>
    public static double Unit(double? r) => r is { } v && Near(v, 1) ? 1 : double.NaN;
}
