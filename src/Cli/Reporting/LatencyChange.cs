using System.Globalization;

namespace OnnxSlim.Cli.Reporting;

/// <summary>A latency change in words: "1.50x faster", or "1.06x slower" where the pruned model lost time (batch-1 GPU runs, kernel choices).</summary>
public static class LatencyChange
{
    public static string Describe(double beforeMs, double afterMs, string times = "x")
    {
        if (!(beforeMs > 0) || !(afterMs > 0)) return "";  // below the timer's resolution: no ratio to give
        double ratio = beforeMs / afterMs;
        return ratio >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{ratio:F2}{times} faster")
            : string.Create(CultureInfo.InvariantCulture, $"{1 / ratio:F2}{times} slower");
    }
}
