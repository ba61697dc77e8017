using OnnxSlim.Calibration;
using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning;

/// <summary>
/// EXPERIMENT (ONNXSLIM_X_SEQRANK): re-chooses which channels each ranked group keeps, groups in depth order, on the
/// moments of the model pruned and re-fitted so far (ThiNet / He et al.'s channel pruning: each layer's selection on
/// the pruned model's inputs), keeping the plan's counts. Stage by stage: the groups before are pruned and their readers
/// re-fitted; the group's depthwise convs are re-fitted at full width (mode 2), then its readers' input moments are
/// measured there and the group ranked (<see cref="CalibratedRanking"/>); it is pruned to the plan's count and its readers
/// re-fitted. Returns the plan with the new keep sets; the pipeline then rewrites and reconstructs as usual.
/// </summary>
internal static class SequentialRanking
{
    public static KeepPlan Rerank(OnnxModel original, ModelAnalysis analysis, KeepPlan plan, CalibrationData calibration, PruneOptions options, int mode)
    {
        var graph = analysis.Model.Graph;
        var position = graph.Nodes.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i);
        var order = plan.KeepByGroup.Keys.Where(id => analysis.Groups[id].Blocks == 1)
            .OrderBy(id => analysis.Groups[id].Producers.Max(p => position.GetValueOrDefault(p))).ThenBy(id => id).ToList();
        var originalById = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (var n in original.Graph.Nodes) originalById.TryAdd(n.Id, n);
        Node? OriginalOf(Node n) => originalById.GetValueOrDefault(n.Id);
        var model = original.Clone();
        var decided = new Dictionary<int, int[]>(plan.KeepByGroup);
        var fitOptions = new ReconstructionOptions { Provider = options.Provider };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double cpu0 = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        foreach (int id in order)
        {
            var target = analysis.Groups[id];
            string key = Key(target);
            var groups = Groups(model, options, out _);
            var g = groups.FirstOrDefault(x => Key(x) == key && x.Width == target.Width);
            if (g is null)
            {
                options.Log?.Invoke($"seqrank: group {id} not found in the partly pruned model; plan's channels kept");
                continue;
            }
            // Mode 3 also re-fits the group's readers at full width towards the original's outputs first: their weights then
            // are the best map from the pruned model's inputs to the original's outputs, and the ranking's K = WᵀW with the
            // pruned model's moments G' is He et al.'s selection objective ‖W·X − W'·X'_R‖² (up to the full-width residual).
            var readersOf = mode >= 3 ? GroupReaders.Find(groups, g, out _).Select(x => x.Layer).Distinct().ToList() : [];
            if (mode >= 2 && g.DepthwiseProducers.Count + readersOf.Count > 0)
            {
                var dw = g.DepthwiseProducers.Concat(readersOf).Where(n => OriginalOf(n) is not null).Select(n => new RefitLayer(n, OriginalOf(n)!, null)).ToList();
                var dwReport = Reconstruction.Run(original, model, dw, calibration, fitOptions);
                model.Graph.Reindex();
                groups = Groups(model, options, out _);
                g = groups.First(x => Key(x) == key && x.Width == target.Width);
            }
            int count = plan.KeepByGroup[id].Length;
            var ranking = CalibratedRanking.Measure(model, groups, [g], calibration, options.Seed, options.Provider);
            int[] keep = ranking.TryGetValue(g.Id, out var r) ? r.Keep(count) : plan.KeepByGroup[id];
            int same = keep.Intersect(plan.KeepByGroup[id]).Count();
            decided[id] = keep;
            ChannelPruner.Apply(model.Graph, groups, new Dictionary<int, int[]> { [g.Id] = keep }, options.RewriteOptions);
            var layers = RefitLayer.FromGroups(groups, new Dictionary<int, int[]> { [g.Id] = keep }, model.Graph, OriginalOf, depthwise: mode < 2);
            var report = Reconstruction.Run(original, model, layers, calibration, fitOptions);
            model.Graph.Reindex();
            options.Log?.Invoke($"seqrank: group {id} ({key.Replace('\n', ',')}) keeps {count} of {target.Width}, {same} as planned; " +
                $"{report.FittedCount} layers re-fitted ({string.Join(", ", report.Layers.Where(l => l.Fitted).Select(l => $"{l.Name} {l.ErrorAfter:0.000}"))})" +
                (report.SkippedLayers.Any() ? $", skipped: {string.Join("; ", report.SkippedLayers.Select(l => l.Name + ": " + l.Skipped))}" : "") +
                $" [{clock.Elapsed.TotalSeconds:0.0} s, {System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - cpu0:0.0} CPU s]");
        }
        model.Dispose();
        return new KeepPlan { KeepByGroup = decided, Spectra = plan.Spectra, Allocation = plan.Allocation, Ignored = plan.Ignored, Notes = plan.Notes };
    }

    private static string Key(ChannelGroup g) => string.Join("\n", g.Producers.Select(p => p.Id));

    private static ChannelGroupSet Groups(OnnxModel model, PruneOptions options, out Dictionary<string, long[]> shapes)
    {
        shapes = ModelAnalysis.ProbeShapes(model, options.InputShapes);
        return ChannelGroups.Find(model, shapes);
    }
}
