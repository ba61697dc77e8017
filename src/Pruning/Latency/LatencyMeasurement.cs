using System.Diagnostics;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// Measures what <see cref="LatencyModelBuilder"/> needs, on the chosen provider and thread count at the model's
/// real input shapes: (1) the whole model, profiled, for every kernel's time in place; (2) the width step
/// the kernels prefer: one conv timed alone at every output count from 32 to 64; (3) each layer whose channels
/// a prunable group sets, timed alone at ¼, ½, ¾ and all of its output count (input whole) and of its input count
/// (output whole), most expensive first, layers of identical shape once, until the time budget is spent. The
/// variants of one layer run in turn, round by round, and keep the median of their ratios to the whole layer's
/// time in the same round: a busy machine slows the rounds, not the ratios.
/// </summary>
internal static class LatencyMeasurement
{
    private static readonly double[] Fractions = [0.25, 0.5, 0.75];
    private static readonly int[] Steps = [2, 4, 8, 16, 32];
    private const int ProbeWidth = 64, ProbeSpan = 32;

    /// <summary>Layers with larger weights are left to the proportional model (building them alone costs more than it tells).</summary>
    private const long MaxLayerWeightBytes = 16L << 20;

    public static LatencyMeasurements Run(ModelAnalysis analysis, byte[] model, PruneOptions options, string key, Action<int, int> progress)
    {
        var clock = Stopwatch.StartNew();
        var graph = analysis.Model.Graph;
        int threads = options.LatencyThreads;
        var profile = KernelProfiler.Run(model, options.InputShapes, options.Provider, threads, warmup: 2, minRounds: 10, minMilliseconds: 1000, maxRounds: 30);
        var measured = new LatencyMeasurements { Key = key, Threads = threads, RunMilliseconds = profile.RunMilliseconds, OutsideKernelsMilliseconds = profile.OutsideKernelsMilliseconds, Kernels = [.. profile.Kernels] };

        var inPlace = new Dictionary<GraphIO.Node, double>(ReferenceEqualityComparer.Instance);
        var owners = KernelAttribution.Map(graph, profile.Kernels);
        for (int k = 0; k < owners.Length; k++)
            if (owners[k] is { } n) inPlace[n] = inPlace.GetValueOrDefault(n) + profile.Kernels[k].Milliseconds;

        var layers = new List<(LayerShape Shape, bool Out, bool In, long OutUnit, long InUnit)>();
        foreach (var node in graph.Nodes.Where(n => KernelAttribution.IsLayer(graph, n)))
        {
            if (LayerShape.Of(graph, node, analysis.Shapes) is not { Timeable: true } shape || shape.WeightBytes > MaxLayerWeightBytes) continue;
            var outLayout = analysis.Groups.LayoutOf(node.Outputs[0]);
            var inLayout = analysis.Groups.LayoutOf(node.Input(0));
            bool outSide = ChannelCounts.Of(analysis.Groups, outLayout, shape.OutputAxis, shape.Outputs) is not null;
            bool inSide = !shape.Depthwise && ChannelCounts.Of(analysis.Groups, inLayout, shape.InputAxis, shape.Inputs) is not null;
            if (outSide || inSide) layers.Add((shape, outSide, inSide, outSide ? ChannelCounts.Unit(outLayout!) : 1, inSide ? ChannelCounts.Unit(inLayout!) : 1));
        }
        layers = [.. layers.OrderByDescending(l => inPlace.GetValueOrDefault(l.Shape.Node))];
        progress(0, layers.Count + 1);

        long opset = analysis.Model.Opset, ir = analysis.Model.IrVersion;
        // Milliseconds of a layer alone at each (outputs, inputs): the first pair's median time, the others by their ratio to it.
        double[] Time(LayerShape l, IReadOnlyList<(long Outputs, long Inputs)> counts)
        {
            var profiles = KernelProfiler.RunAlternating([.. counts.Select(c => (l.Build(c.Outputs, c.Inputs, opset, ir), (IReadOnlyList<NamedTensor>)[l.InputAt(c.Outputs, c.Inputs)]))],
                options.Provider, threads, warmup: 1, minRounds: 7, minMilliseconds: 40, maxRounds: 30);
            double reference = profiles[0].NodeMilliseconds;
            return [reference, .. profiles.Skip(1).Select(p => p.RatioTo(profiles[0]) * reference)];
        }

        // The width step: a plain conv at every output count from 64 down to 32 (same input), the one that costs most in place.
        if (layers.FirstOrDefault(l => l.Out && l.OutUnit == 1 && l.Shape.Node.OpType == "Conv" && !l.Shape.Depthwise && l.Shape.Outputs >= ProbeWidth) is { Shape: var probe })
        {
            var widths = Enumerable.Range(ProbeWidth - ProbeSpan, ProbeSpan + 1).Reverse().ToArray();
            var ms = Time(probe, [.. widths.Select(w => ((long)w, probe.Inputs))]);
            measured.StepProbe = new LayerTimings { OutWidths = [.. widths.Reverse().Select(w => (double)w)], OutMilliseconds = [.. ms.Reverse()] };
            measured.Step = StepOf([.. widths.Reverse()], [.. ms.Reverse()]);
        }
        progress(1, layers.Count + 1);

        var bySignature = new Dictionary<string, LayerTimings>(StringComparer.Ordinal);
        int step = measured.Step;
        for (int i = 0; i < layers.Count; i++)
        {
            var (shape, outSide, inSide, outUnit, inUnit) = layers[i];
            string signature = shape.Signature + $"|{outSide}|{inSide}";
            if (!bySignature.TryGetValue(signature, out var timings))
            {
                if (clock.Elapsed.TotalSeconds > options.LatencyBudgetSeconds) { measured.NotTimed++; continue; }
                var outWidths = outSide ? Widths(shape.Outputs, outUnit * step) : [];
                var inWidths = inSide ? Widths(shape.Inputs, inUnit * step) : [];
                var counts = new List<(long, long)> { (shape.Outputs, shape.Inputs) };
                counts.AddRange(outWidths.SkipLast(1).Select(w => ((long)w, shape.Inputs)));
                counts.AddRange(inWidths.SkipLast(1).Select(w => (shape.Outputs, (long)w)));
                var ms = Time(shape, counts);
                int o = Math.Max(0, outWidths.Length - 1);
                timings = new LayerTimings
                {
                    OutWidths = outWidths,
                    OutMilliseconds = outSide ? [.. ms.Skip(1).Take(o), ms[0]] : [],
                    InWidths = inWidths,
                    InMilliseconds = inSide ? [.. ms.Skip(1 + o), ms[0]] : [],
                };
                bySignature[signature] = timings;
            }
            measured.Layers[shape.Node.Id] = timings;
            progress(i + 2, layers.Count + 1);
        }
        measured.Seconds = clock.Elapsed.TotalSeconds;
        return measured;
    }

    /// <summary>¼, ½ and ¾ of <paramref name="extent"/> in multiples of <paramref name="unit"/> (at least one), then the extent.</summary>
    internal static double[] Widths(long extent, long unit)
    {
        var widths = new SortedSet<double>();
        foreach (double f in Fractions)
        {
            double w = Math.Max(unit, Math.Round(f * extent / unit) * unit);
            if (w < extent) widths.Add(w);
        }
        widths.Add(extent);
        return [.. widths];
    }

    /// <summary>
    /// The step q whose padded count explains the timings best: for each q, the least-squares line of t(k) on
    /// ⌈k/q⌉·q, and the q with the smallest residual wins (a kernel that pads to 16 channels gives a staircase that
    /// only q = 16 fits; one that scales smoothly is fitted best by q = 1). Residuals within 5% of the best count as
    /// a tie, won by the smaller step. Uses every count, so one noisy timing moves it little.
    /// </summary>
    internal static int StepOf(IReadOnlyList<int> widths, IReadOnlyList<double> milliseconds)
    {
        int best = 1;
        double bestResidual = Residual(widths, milliseconds, 1);
        foreach (int q in Steps)
        {
            double r = Residual(widths, milliseconds, q);
            if (r < 0.95 * bestResidual) { best = q; bestResidual = r; }
        }
        return best;
    }

    private static double Residual(IReadOnlyList<int> widths, IReadOnlyList<double> ms, int q)
    {
        int n = widths.Count;
        double[] x = [.. widths.Select(k => (double)((k + q - 1) / q * q))];
        double mx = x.Average(), my = ms.Average(), sxy = 0, sxx = 0;
        for (int i = 0; i < n; i++) { sxy += (x[i] - mx) * (ms[i] - my); sxx += (x[i] - mx) * (x[i] - mx); }
        double slope = sxx > 0 ? sxy / sxx : 0, rss = 0;
        for (int i = 0; i < n; i++) { double e = ms[i] - my - slope * (x[i] - mx); rss += e * e; }
        return rss;
    }
}
