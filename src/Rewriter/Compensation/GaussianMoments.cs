namespace OnnxSlim.Rewriter;

/// <summary>
/// Mean and variance of f(z) for z ~ N(m, v): closed form for ReLU-like functions, numerical integration
/// (composite Simpson over m ± 10σ) for other channel-wise functions. v = 0 means z is the constant m.
/// </summary>
internal static class GaussianMoments
{
    private const int Intervals = 2000;

    public static double Pdf(double x) => Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    public static double Cdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));

    /// <summary>Mean and variance of max(z, 0).</summary>
    public static (double Mean, double Var) Relu(double m, double v)
    {
        if (!(v > 0)) return (Math.Max(m, 0), 0);
        double s = Math.Sqrt(v), a = m / s, cdf = Cdf(a), pdf = Pdf(a);
        double mean = m * cdf + s * pdf;
        double second = (m * m + v) * cdf + m * s * pdf;
        return (mean, Math.Max(second - mean * mean, 0));
    }

    /// <summary>Mean and variance of max(z, 0) + α·min(z, 0) (LeakyRelu, PRelu with slope α).</summary>
    public static (double Mean, double Var) Leaky(double m, double v, double alpha)
    {
        // f(z) = α·z + (1 − α)·r with r = relu(z); z·r = r².
        var (rm, rv) = Relu(m, v);
        double r2 = rv + rm * rm, z2 = v + m * m, b = 1 - alpha;
        double mean = alpha * m + b * rm;
        double second = alpha * alpha * z2 + 2 * alpha * b * r2 + b * b * r2;
        return (mean, Math.Max(second - mean * mean, 0));
    }

    /// <summary>Mean and variance of f(z) by integration; f must be finite on the range.</summary>
    public static (double Mean, double Var) Of(Func<double, double> f, double m, double v)
    {
        if (!(v > 0)) return (f(m), 0);
        double s = Math.Sqrt(v), h = 20.0 / Intervals;
        double mean = 0, second = 0;
        for (int k = 0; k <= Intervals; k++)
        {
            double x = -10 + k * h;
            double w = (k == 0 || k == Intervals ? 1 : k % 2 == 1 ? 4 : 2) * Pdf(x) * h / 3;
            double y = f(m + s * x);
            mean += w * y;
            second += w * y * y;
        }
        return (mean, Math.Max(second - mean * mean, 0));
    }

    /// <summary>Complementary error function (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7).</summary>
    public static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }
}
