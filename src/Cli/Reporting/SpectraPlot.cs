using System.Globalization;
using System.Text;

using OnnxSlim.Pruning;

namespace OnnxSlim.Cli.Reporting;

/// <summary>
/// The paper's figure: every group's normalised spectrum σ_i/σ_1 (log scale) against the relative index
/// i/width, on one axis, as a self-contained SVG (no script, no network).
/// </summary>
public static class SpectraPlot
{
    private const string SpectraTitle = "Normalised singular values σᵢ/σ₁ per channel group";

    /// <param name="spectra">Per group, its values by unit (σᵢ/σ₁, or what an allocation compared with its threshold).</param>
    /// <param name="title">The figure's title (the spectra's by default).</param>
    public static string Svg(IReadOnlyList<(string Label, double[] Normalized)> spectra, double? threshold = null, int width = 760, int height = 420,
        string title = SpectraTitle)
    {
        const int left = 60, right = 20, top = 30, bottom = 50;
        // Four decades below the largest value (at least 1: σ₁/σ₁), more if the threshold lies lower.
        double largest = spectra.SelectMany(s => s.Normalized).Where(v => v > 0 && double.IsFinite(v)).DefaultIfEmpty(1).Max();
        int maxLog = Math.Max(0, (int)Math.Ceiling(Math.Log10(largest)));
        int minLog = maxLog - 4;
        if (threshold is { } t0 && t0 > 0 && double.IsFinite(t0)) minLog = Math.Min(minLog, (int)Math.Floor(Math.Log10(t0)) - 1);
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">");
        sb.Append(inv, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        sb.Append(inv, $"<text x=\"{width / 2}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{System.Security.SecurityElement.Escape(title)}</text>");
        double X(double f) => left + f * (width - left - right);
        double Y(double v) => top + (maxLog - Math.Clamp(Math.Log10(Math.Max(v, 1e-300)), minLog, maxLog)) / (maxLog - minLog) * (height - top - bottom);
        for (int e = maxLog; e >= minLog; e--)
        {
            double y = Y(Math.Pow(10, e));
            sb.Append(inv, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{y:F1}\" y2=\"{y:F1}\" stroke=\"#ddd\"/>");
            sb.Append(inv, $"<text x=\"{left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">1e{e}</text>");
        }
        for (int t = 0; t <= 4; t++)
        {
            double x = X(t / 4.0);
            sb.Append(inv, $"<line x1=\"{x:F1}\" x2=\"{x:F1}\" y1=\"{top}\" y2=\"{height - bottom}\" stroke=\"#eee\"/>");
            sb.Append(inv, $"<text x=\"{x:F1}\" y=\"{height - bottom + 16}\" text-anchor=\"middle\">{t / 4.0:0.##}</text>");
        }
        sb.Append(inv, $"<text x=\"{width / 2}\" y=\"{height - 12}\" text-anchor=\"middle\">relative index i / rank</text>");
        for (int g = 0; g < spectra.Count; g++)
        {
            var s = spectra[g].Normalized;
            if (s.Length == 0) continue;
            string color = $"hsl({g * 360.0 / Math.Max(spectra.Count, 1):F0},65%,45%)";
            sb.Append("<polyline fill=\"none\" stroke-width=\"1.2\" stroke-opacity=\"0.8\" stroke=\"").Append(color).Append("\" points=\"");
            for (int i = 0; i < s.Length; i++)
                sb.Append(inv, $"{X(s.Length == 1 ? 0 : (double)i / (s.Length - 1)):F1},{Y(s[i]):F1} ");
            sb.Append("\"><title>").Append(System.Security.SecurityElement.Escape(spectra[g].Label)).Append("</title></polyline>");
        }
        if (threshold is { } tau && tau > 0)
        {
            double y = Y(tau);
            sb.Append(inv, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{y:F1}\" y2=\"{y:F1}\" stroke=\"black\" stroke-dasharray=\"5,4\"/>");
            sb.Append(inv, $"<text x=\"{width - right - 4}\" y=\"{y - 4:F1}\" text-anchor=\"end\">threshold τ = {tau:G3}</text>");
        }
        sb.Append("</svg>");
        return sb.ToString();
    }
}
