using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;

namespace OnnxSlim.Calibration;

/// <summary>
/// With calibration data, each group's channels ranked by what their removal costs the layers reading
/// them once those are re-fitted (<see cref="ChannelElimination"/>), from moments measured on the unpruned
/// model: of a conv's im2col patches where they are small enough, else of the channels. Groups none of
/// whose readers can be measured get no ranking.
/// </summary>
public static class CalibratedRanking
{
    /// <summary>Largest patch (input channels × kernel area) measured whole; wider convs use channel moments.</summary>
    public const int MaxPatchFeatures = 1152;

    /// <param name="recording">Filled in the same pass over the original model with what re-fitting the readers of these
    /// groups will need (see <see cref="TargetRecording"/>).</param>
    /// <param name="readers">When given, filled with each ranked group's readers and their moments (what
    /// <see cref="GroupSensitivity"/> re-fits).</param>
    public static Dictionary<int, ChannelElimination> Measure(OnnxModel model, ChannelGroupSet all, IEnumerable<ChannelGroup> groups,
        CalibrationData calibration, int seed, Provider provider = Provider.Cpu, TargetRecording? recording = null,
        Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>>? readers = null, Action<string>? log = null)
    {
        var found = groups.ToDictionary(g => g.Id, g => GroupReaders.Find(all, g, out _));
        var requests = new Dictionary<(string, string?), ChannelMoments.Request>();
        ChannelMoments.Request RequestFor(GroupReaders.Reader r, int taps)
        {
            string? logits = taps > 1 ? null : SigmoidLogits(model.Graph, r.Layer);
            var key = (r.Input, taps > 1 ? r.Layer.Id : logits is null ? null : "σ" + logits);
            if (!requests.TryGetValue(key, out var request))
                requests[key] = request = taps > 1
                    ? new ChannelMoments.Request(r.Input, r.Layer, model.Graph.ResolveWeight(r.Layer.Input(1))!.Tensor.Dims)
                    : new ChannelMoments.Request(r.Input, SigmoidLogits: logits);
            return request;
        }
        var statistics = found.Where(r => r.Value.Count > 0).ToDictionary(r => r.Key,
            r => r.Value.Select(x =>
            {
                int taps = Taps(model, x);
                return (Reader: x, Taps: taps, Request: RequestFor(x, taps));
            }).ToList());
        var result = new Dictionary<int, ChannelElimination>();
        if (requests.Count == 0) return result;
        recording?.AddCandidates(model.Graph, groups);
        foreach (var r in requests.Values.Where(r => r.SigmoidLogits is not null))
            log?.Invoke($"calibrated ranking: the reader of {r.Value} is weighted by the sigmoid's slope at {r.SigmoidLogits}");
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        var moments = ChannelMoments.Compute(model, requests.Values, calibration, seed: seed, provider: provider, recording: recording);
        log?.Invoke($"calibrated ranking: moments of {requests.Count} readers' inputs on the original model: {System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds:0.00} s ({System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - cpu:0.0} CPU s)");
        start = System.Diagnostics.Stopwatch.GetTimestamp();
        // Widest first, handed out one at a time: the few widest groups take most of the time (ResNet-50's 1,024- and
        // 2,048-channel ones ~3.5 core seconds each), and started last they left a core idle at the end.
        var widestFirst = statistics.OrderByDescending(s => s.Value.Sum(x => Math.Pow((double)x.Reader.Positions.Length * x.Taps, 3)))
            .ThenBy(s => s.Key).ToList();
        var ranked = System.Collections.Concurrent.Partitioner.Create(widestFirst, System.Collections.Concurrent.EnumerablePartitionerOptions.NoBuffering)
            .AsParallel()
            .Select(s =>
            {
                var consumers = s.Value.Select(x => (x.Reader, Statistics: Statistics(x.Reader, moments[x.Request], x.Taps))).ToList();
                return (s.Key, Consumers: consumers, Elimination: ChannelElimination.Run([.. consumers.Select(c => c.Statistics)]));
            })
            .ToList();
        log?.Invoke($"calibrated ranking: channel elimination of {ranked.Count} groups: {System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds:0.00} s");
        foreach (var (id, consumers, elimination) in ranked)
        {
            result[id] = elimination;
            if (readers is not null) readers[id] = consumers;
        }
        return result;
    }

    /// <summary>
    /// The logits z when <paramref name="layer"/>'s output reaches a model output through a Sigmoid, with only
    /// elementwise ops by constants (or none) on either side of it; else null. Such a layer is measured where the
    /// sigmoid is steep (<see cref="ChannelMoments.Request.SigmoidLogits"/>): on a detector's probability map, the raw
    /// energy of the logits is mostly the saturated background, while the mask is decided near the threshold.
    /// </summary>
    internal static string? SigmoidLogits(Graph graph, Node layer)
    {
        string value = layer.Outputs[0];
        string? logits = null;
        for (int hops = 0; hops < 8; hops++)
        {
            if (logits is not null && graph.IsGraphOutput(value)) return logits;
            if (graph.IsGraphOutput(value) || graph.Consumers(value) is not [var next]) return null;
            if (next.OpType == "Sigmoid" && logits is null) logits = value;
            else if (!(next.OpType is "Add" or "Sub" or "Mul" or "Div" && next.Inputs.Count == 2
                && next.Inputs.Count(i => i != value && graph.IsConstant(i, 4)) == 1) && next.OpType != "Identity") return null;
            value = next.Outputs[0];
        }
        return null;
    }

    /// <summary>Kernel area when the reader is a one-group Conv whose whole patch is small enough to measure, else 1.</summary>
    private static int Taps(OnnxModel model, GroupReaders.Reader r)
    {
        if (r.Layer.OpType != "Conv" || model.Graph.ResolveWeight(r.Layer.Input(1)) is not { } w) return 1;
        long[] dims = w.Tensor.Dims;
        long area = dims.Skip(2).Aggregate(1L, (a, b) => a * b);
        return area > 1 && dims[1] * area <= MaxPatchFeatures ? (int)area : 1;
    }

    /// <summary>The moments of the group's features (channel at <paramref name="r"/>'s positions, then tap), in group order.</summary>
    private static ConsumerStatistics Statistics(GroupReaders.Reader r, double[] moments, int taps)
    {
        int total = (int)Math.Round(Math.Sqrt(moments.Length)), n = r.Positions.Length * taps;
        var features = new int[n];
        for (int j = 0; j < r.Positions.Length; j++)
            for (int a = 0; a < taps; a++) features[j * taps + a] = r.Positions[j] * taps + a;
        // A reader of every channel in group order reads the whole matrix: shared, not copied, as nothing writes to moments
        // (ResNet-50's plan held ~350 MB of such copies through the elimination and the check; a 2,048-wide reader's is 33 MB).
        if (n == total && features.AsSpan().SequenceEqual(Enumerable.Range(0, n).ToArray())) return new ConsumerStatistics(moments, r.Weights, taps);
        var sub = new double[(long)n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) sub[(long)i * n + j] = moments[(long)features[i] * total + features[j]];
        return new ConsumerStatistics(sub, r.Weights, taps);
    }
}
