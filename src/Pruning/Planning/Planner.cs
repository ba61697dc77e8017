using System.Text.RegularExpressions;
using OnnxSlim.Calibration;
using OnnxSlim.Rewriter;
using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning;

/// <summary>
/// SLIMING's two sub-problems over the analysed groups: how many channels each group keeps (the global
/// σ/σ₁ threshold meeting the budget, or the uniform baseline), then which (GEM or a baseline criterion).
/// </summary>
public static class Planner
{
    /// <summary>Sub-problem (1): spectra of the active groups and their keep counts under the budget.</summary>
    /// <param name="calibration">Needed for <c>--criterion refit</c>: the groups are ranked on it, and a ranked group's
    /// error curve takes the place of its σ/σ₁ spectrum in the allocation.</param>
    /// <param name="recording">Filled during the ranking's pass with what the reconstruction will need (see <see cref="TargetRecording"/>).</param>
    public static Configuration Configure(ModelAnalysis analysis, PruneOptions options, IReadOnlyList<Runtime.NamedTensor>? calibration = null,
        TargetRecording? recording = null)
    {
        var groups = analysis.Groups;
        var ignored = IgnoredGroups(analysis, options.Ignore);
        var active = groups.Where(g => g.Prunable && !ignored.Contains(g.Id)).ToList();
        if (active.Count == 0)
            throw new PruningException(groups.Count == 0
                ? "the model has no prunable convolution (no Conv/ConvTranspose/Gemm channel groups found)"
                : $"no prunable channel group: all {groups.Count} groups are frozen or ignored (first reason: {groups.FirstOrDefault(g => g.Frozen)?.Reason ?? "ignored"})");

        var (matrices, spectra) = FilterSpectrum.ComputeAll(active.Count, i => GroupMatrices.Build(groups.Graph, active[i]), i => active[i].Width);
        var spectrumOf = active.Select((g, i) => (g.Id, spectra[i])).ToDictionary(p => p.Id, p => p.Item2);
        var ranking = !options.Refit ? new Dictionary<int, ChannelElimination>()
            : CalibratedRanking.Measure(analysis.Model, analysis.Groups, active, calibration ?? throw new ArgumentException("criterion refit needs calibration inputs", nameof(calibration)), options.Seed, options.Provider, recording);

        var planning = groups.Select(g => spectrumOf.TryGetValue(g.Id, out var s)
            ? new PlanningGroup(g.Width, ranking.GetValueOrDefault(g.Id) is { } r ? ErrorCurve(r) : s, MinKeep(g.Width, options.MinKeepFraction), Fixed: false, RoundTo: options.RoundFor(g.Width))
            : new PlanningGroup(g.Width, null, g.Width, Fixed: true)).ToList();
        var solver = new BudgetSolver();
        var costs = analysis.GroupCosts;
        var allocation = options.Allocation == AllocationMethod.Uniform
            ? solver.AllocateUniform(planning, costs.Macs, costs.Params, options.Target, options.Ratio, roundTo: 1)
            : solver.Solve(planning, costs.Macs, costs.Params, options.Target, options.Ratio, roundTo: 1);
        return new Configuration(active, matrices, spectrumOf, allocation, ignored, ranking);
    }

    /// <summary>Both sub-problems: the keep counts, then which filters (GEM or a baseline criterion).</summary>
    /// <remarks>With <c>--criterion refit</c>, groups that could not be ranked (no reader measured) fall back to GEM.</remarks>
    public static KeepPlan Plan(ModelAnalysis analysis, PruneOptions options, IReadOnlyList<Runtime.NamedTensor>? calibration = null,
        TargetRecording? recording = null)
    {
        var config = Configure(analysis, options, calibration, recording);
        var selector = FilterSelectors.Create(options.Refit ? "gem" : options.EffectiveCriterion.ToString().ToLowerInvariant(), options.Seed);
        var keeps = config.Active.Select(g => config.Allocation.Keep[g.Id]).ToList();
        var unranked = Enumerable.Range(0, config.Active.Count).Where(i => !config.Ranking.ContainsKey(config.Active[i].Id)).ToList();
        var chosen = FilterSelectors.SelectAll(selector, [.. unranked.Select(i => config.Matrices[i])], [.. unranked.Select(i => keeps[i])]);
        var selected = new int[config.Active.Count][];
        for (int u = 0; u < unranked.Count; u++) selected[unranked[u]] = chosen[u];
        for (int i = 0; i < config.Active.Count; i++)
            if (config.Ranking.GetValueOrDefault(config.Active[i].Id) is { } r)
            {
                selected[i] = r.Keep(keeps[i]);
                config.Matrices[i].ReleaseCache(); // the Gram its spectrum left for GEM, which this group does not run
            }
        var keepByGroup = new Dictionary<int, int[]>();
        for (int i = 0; i < config.Active.Count; i++)
            if (selected[i].Length < config.Active[i].Width) keepByGroup[config.Active[i].Id] = selected[i];
        var notes = new List<string>();
        if (options.Refit)
            notes.Add($"refit ranking: {config.Ranking.Count} of {config.Active.Count} groups ranked on calibration data" +
                (unranked.Count > 0 ? $"; {unranked.Count} with no measurable reader (e.g. a Flatten of a spatial map) use GEM and their weight spectrum" : ""));
        return new KeepPlan { KeepByGroup = keepByGroup, Spectra = config.Spectra, Allocation = config.Allocation, Ignored = config.Ignored, Notes = notes };
    }

    public sealed record Configuration(IReadOnlyList<ChannelGroup> Active, IReadOnlyList<FilterMatrix> Matrices,
        IReadOnlyDictionary<int, FilterSpectrum> Spectra, KeepAllocation Allocation, IReadOnlySet<int> Ignored,
        IReadOnlyDictionary<int, ChannelElimination> Ranking);

    /// <summary>
    /// The relative error curve e(k) (k kept, k &lt; width) read as a spectrum: non-increasing from e(0) ≈ 1, so
    /// the global threshold keeps, in every group, the fewest channels whose removal costs less than it.
    /// </summary>
    private static FilterSpectrum ErrorCurve(ChannelElimination r) =>
        FilterSpectrum.FromSingularValues(r.Width, r.Width, r.RelativeError.AsSpan(0, r.Width));

    /// <summary>Default floor: at least one channel and the given fraction of the width.</summary>
    public static int MinKeep(int width, double fraction) => Math.Clamp((int)Math.Ceiling(width * fraction), 1, width);

    /// <summary>Replays a plan file: groups are matched by their producer names, and must have the same width.</summary>
    public static KeepPlan FromFile(ModelAnalysis analysis, PlanFile file)
    {
        var byProducers = analysis.Groups.ToDictionary(g => string.Join("\n", g.Producers.Select(p => p.Id)), g => g);
        var keep = new Dictionary<int, int[]>();
        foreach (var entry in file.Groups)
        {
            if (!byProducers.TryGetValue(string.Join("\n", entry.Producers), out var group))
                throw new PruningException($"plan group {entry.Id} (producers {string.Join(", ", entry.Producers.Take(3))}) does not match any channel group of this model");
            if (group.Width != entry.Channels)
                throw new PruningException($"plan group {entry.Id} has {entry.Channels} channels, the model's group has {group.Width}");
            if (entry.Keep.Count == group.Width) continue;
            if (group.Frozen) throw new PruningException($"plan group {entry.Id} prunes a group that is frozen in this model ({group.Reason})");
            var sorted = entry.Keep.Distinct().Order().ToArray();
            if (sorted.Length != entry.Keep.Count || sorted.Length == 0 || sorted[0] < 0 || sorted[^1] >= group.Width)
                throw new PruningException($"plan group {entry.Id} keeps invalid channel indices (need distinct values in [0, {group.Width}))");
            keep[group.Id] = sorted;
        }
        return new KeepPlan { KeepByGroup = keep, Spectra = new Dictionary<int, FilterSpectrum>() };
    }

    public static PlanFile ToFile(ModelAnalysis analysis, KeepPlan plan, PruneOptions options) => new()
    {
        Target = options.Target.ToString().ToLowerInvariant(),
        Cr = options.Ratio,
        Groups = [.. analysis.Groups.Select(g => new PlanGroup
        {
            Id = g.Id,
            Producers = [.. g.Producers.Select(p => p.Id)],
            Channels = g.Width,
            Keep = plan.KeepByGroup.TryGetValue(g.Id, out var k) ? [.. k] : [.. Enumerable.Range(0, g.Width)],
            Frozen = g.Frozen,
            Reason = g.Frozen ? g.Reason : plan.Ignored.Contains(g.Id) ? "ignored (--ignore)" : null,
        })],
    };

    /// <summary>Groups any of whose producers matches an --ignore name or glob; a pattern matching no node is an error.</summary>
    private static HashSet<int> IgnoredGroups(ModelAnalysis analysis, IReadOnlyList<string> patterns)
    {
        var ignored = new HashSet<int>();
        foreach (string pattern in patterns)
        {
            var regex = new Regex("^" + Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$");
            bool Match(GraphIO.Node n) => regex.IsMatch(n.Name) || regex.IsMatch(n.Id);
            if (!analysis.Model.Graph.Nodes.Any(Match))
                throw new PruningException($"ignore pattern '{pattern}' matches no node of the model");
            foreach (var g in analysis.Groups)
                if (g.Producers.Any(Match)) ignored.Add(g.Id);
        }
        return ignored;
    }
}
