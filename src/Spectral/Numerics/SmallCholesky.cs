namespace OnnxSlim.Spectral.Numerics;

internal static class SmallCholesky
{
    /// <summary>
    /// Solves C·x = r for a small SPD C (t×t, row-major). A pivot that is not clearly positive (a row
    /// already dependent on the earlier ones) drops that unknown: x = 0 there.
    /// </summary>
    public static void Solve(double[] c, int t, double[] r, double[] x)
    {
        var l = new double[t * t];
        var ok = new bool[t];
        for (int i = 0; i < t; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                if (!ok[j] && j < i) { l[i * t + j] = 0; continue; }
                double s = c[i * t + j];
                for (int k = 0; k < j; k++) s -= l[i * t + k] * l[j * t + k];
                if (i == j)
                {
                    ok[i] = s > 1e-300 && s > 1e-14 * c[i * t + i];
                    l[i * t + i] = ok[i] ? Math.Sqrt(s) : 1;
                }
                else l[i * t + j] = s / l[j * t + j];
            }
            if (!ok[i]) for (int j = 0; j < i; j++) l[i * t + j] = 0;
        }
        for (int i = 0; i < t; i++)
        {
            double s = ok[i] ? r[i] : 0;
            for (int k = 0; k < i; k++) s -= l[i * t + k] * x[k];
            x[i] = ok[i] ? s / l[i * t + i] : 0;
        }
        for (int i = t - 1; i >= 0; i--)
        {
            double s = x[i];
            for (int k = i + 1; k < t; k++) s -= l[k * t + i] * x[k];
            x[i] = ok[i] ? s / l[i * t + i] : 0;
        }
    }
}
