using System.Runtime.CompilerServices;
namespace OnnxSlim.Spectral.Numerics;

/// <summary>Eigenvalues of a symmetric tridiagonal matrix (diagonal d, off-diagonal e).</summary>
internal static class TridiagonalEigen
{
    /// <summary>All eigenvalues, descending. Implicit QL with Wilkinson shifts, O(n²), no vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double[] Eigenvalues(ReadOnlySpan<double> diagonal, ReadOnlySpan<double> offDiagonal)
    {
        int n = diagonal.Length;
        var d = diagonal.ToArray();
        var e = new double[n];
        for (int i = 0; i < n - 1; i++) e[i] = offDiagonal[i];
        for (int l = 0; l < n; l++)
        {
            int iter = 0;
            while (true)
            {
                int m = l;
                for (; m < n - 1; m++)
                {
                    double dd = Math.Abs(d[m]) + Math.Abs(d[m + 1]);
                    if (Math.Abs(e[m]) + dd == dd) break;
                }
                if (m == l) break;
                if (++iter > 60) break; // converged to rounding in practice; never loop forever
                double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
                double r = Hypot(g, 1.0);
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? Math.Abs(r) : -Math.Abs(r)));
                double s = 1, c = 1, p = 0;
                int i = m - 1;
                bool underflow = false;
                for (; i >= l; i--)
                {
                    double f = s * e[i], b = c * e[i];
                    r = Hypot(f, g);
                    e[i + 1] = r;
                    if (r == 0)
                    {
                        d[i + 1] -= p; e[m] = 0; underflow = true; break;
                    }
                    s = f / r; c = g / r;
                    g = d[i + 1] - p;
                    r = (d[i] - g) * s + 2.0 * c * b;
                    p = s * r;
                    d[i + 1] = g + p;
                    g = c * r - b;
                }
                if (underflow) continue;
                d[l] -= p; e[l] = g; e[m] = 0;
            }
        }
        Array.Sort(d);
        Array.Reverse(d);
        return d;
    }

    /// <summary>Largest eigenvalue by Sturm-count bisection (O(n) per step, ~60 steps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double LargestEigenvalue(ReadOnlySpan<double> diagonal, ReadOnlySpan<double> offDiagonal)
    {
        int n = diagonal.Length;
        double lo = double.MaxValue, hi = double.MinValue;
        for (int i = 0; i < n; i++)
        {
            double r = (i > 0 ? Math.Abs(offDiagonal[i - 1]) : 0) + (i < n - 1 ? Math.Abs(offDiagonal[i]) : 0);
            lo = Math.Min(lo, diagonal[i] - r);
            hi = Math.Max(hi, diagonal[i] + r);
        }
        if (n == 1) return diagonal[0];
        for (int it = 0; it < 200 && hi - lo > 1e-15 * Math.Max(Math.Abs(hi), Math.Abs(lo)); it++)
        {
            double mid = 0.5 * (lo + hi);
            if (CountAbove(diagonal, offDiagonal, mid) > 0) lo = mid; else hi = mid;
        }
        return hi;
    }

    // Number of eigenvalues strictly greater than x (Sturm sequence of T − xI).

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int CountAbove(ReadOnlySpan<double> d, ReadOnlySpan<double> e, double x)
    {
        int below = 0;
        double q = 1;
        for (int i = 0; i < d.Length; i++)
        {
            double e2 = i > 0 ? e[i - 1] * e[i - 1] : 0;
            q = d[i] - x - (i > 0 ? e2 / q : 0);
            if (q == 0) q = -1e-300;
            if (q < 0) below++;
        }
        return d.Length - below;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Hypot(double a, double b)
    {
        a = Math.Abs(a); b = Math.Abs(b);
        if (a > b) { double r = b / a; return a * Math.Sqrt(1 + r * r); }
        if (b == 0) return 0;
        double q = a / b; return b * Math.Sqrt(1 + q * q);
    }
}
