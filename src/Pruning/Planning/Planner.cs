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
    /// <param name="latency">Needed for <see cref="BudgetTarget.Latency"/>: the measured cost model (its step also sets the
    /// rounding unless --round-to does) and the check of a plan against the real model.</param>
    /// <param name="recording">Filled during the ranking's pass with what the reconstruction will need (see <see cref="TargetRecording"/>).</param>
    public static Configuration Configure(ModelAnalysis analysis, PruneOptions options, CalibrationData? calibration = null,
        LatencyTarget? latency = null, TargetRecording? recording = null) => Configure(analysis, options, calibration, latency, recording, null);

    // gem: the selector that will run on these groups (its first epochs on wide groups may start with their spectra).
    private static Configuration Configure(ModelAnalysis analysis, PruneOptions options, CalibrationData? calibration,
        LatencyTarget? latency, TargetRecording? recording, GemSelector? gem)
    {
        var groups = analysis.Groups;
        var ignored = IgnoredGroups(analysis, options.Ignore);
        var active = groups.Where(g => g.Prunable && !ignored.Contains(g.Id)).ToList();
        if (active.Count == 0)
            throw new PruningException((groups.Count == 0
                ? "the model has no prunable convolution (no Conv/ConvTranspose/Gemm channel groups found)"
                : $"no prunable channel group: all {groups.Count} groups are frozen or ignored (first reason: {groups.FirstOrDefault(g => g.Frozen)?.Reason ?? "ignored"})")
                + ComputedWeights.Hint(groups.Graph));

        // Groups tied into conv groups select within each conv group (GEM); the calibrated ranking orders a group as a whole.
        var ranked = active.Where(g => g.Blocks == 1).ToList();
        bool checkable = options.Refit && options.SensitivitySamples > 0 && options.Allocation == AllocationMethod.Sliming && calibration is not null;
        // The readers' moments are kept past the ranking only for the end-to-end check: of the whole model (split into tails
        // where that is too costly as a whole, SplitCheckSamples), or where even that is (checkSamples 0), of the groups read
        // in its cheap tail (TailCheck).
        var readers = checkable ? new Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>>() : null;
        // A group the calibrated ranking orders is allocated on its error curve and selected by it, so its weight spectrum is
        // not computed (VGG-16's first classifier group alone: a 420-G multiply-add Gram); those it cannot rank have theirs.
        // The spectra need no samples: they are computed beside the ranking's pass over the original model, whose runs and
        // sums leave part of a core idle, and after it for the groups it found no reader to measure.
        var beside = options.Refit ? active.Where(g => g.Blocks != 1).ToList() : active;
        var spectraTask = Task.Run(() => Spectra(groups, beside, options, gem));
        Dictionary<int, ChannelElimination> ranking;
        try
        {
            ranking = !options.Refit ? []
                : CalibratedRanking.Measure(analysis.Model, analysis.Groups, ranked, calibration ?? throw new ArgumentException("criterion refit needs calibration inputs", nameof(calibration)), options.Seed, options.Provider, recording, readers, options.Log);
        }
        catch
        {
            try { spectraTask.Wait(); } catch (AggregateException) { } // the ranking's error is the one to report
            throw;
        }
        var computed = spectraTask.GetAwaiter().GetResult();
        var matrices = new FilterMatrix[active.Count];
        var spectrumOf = new Dictionary<int, FilterSpectrum>();
        try
        {
            var late = active.Where(g => g.Blocks == 1 && options.Refit && !ranking.ContainsKey(g.Id)).ToList();
            foreach (var (list, (m, s)) in new[] { (beside, computed), (late, Spectra(groups, late, options, gem)) })
                for (int i = 0; i < list.Count; i++)
                {
                    matrices[active.IndexOf(list[i])] = m[i];
                    spectrumOf[list[i].Id] = s[i];
                }
            // A ranked group's matrix only says whether its filters are shorter than it is wide (rank-capped); built, not analysed.
            for (int i = 0; i < active.Count; i++) matrices[i] ??= GroupMatrices.Build(groups.Graph, active[i]);
            return Configure(analysis, options, calibration, latency, ignored, active, matrices, spectrumOf, ranked, readers, ranking);
        }
        catch
        {
            foreach (var m in matrices.Concat(computed.Matrices)) m?.ReleaseCache(); // stops a GEM epoch started beside the spectra
            throw;
        }
    }

    private static (FilterMatrix[] Matrices, FilterSpectrum[] Spectra) Spectra(ChannelGroupSet groups, List<ChannelGroup> active, PruneOptions options, GemSelector? gem)
    {
        if (active.Count == 0) return ([], []);
        long spectraStart = System.Diagnostics.Stopwatch.GetTimestamp();
        var (matrices, spectra) = FilterSpectrum.ComputeAll(active.Count, i => GroupMatrices.Build(groups.Graph, active[i]), i => active[i].Width,
            gem is null ? null : i => active[i].Blocks == 1 ? gem : null);
        // The spectra's work buffers (Grams, float32 copies, panels) are garbage now, and the GC would decommit them only gradually
        // while the selection allocates beside them. VGG-16 --cr 0.5: plan peak 1,348-1,446 → 1,270-1,300 MiB (50-85 ms).
        if (matrices.Any(m => 8L * Math.Min(m.Rows, m.Cols) * Math.Min(m.Rows, m.Cols) >= CollectAfterSpectraBytes))
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        options.Log?.Invoke($"spectra of {active.Count} groups: {System.Diagnostics.Stopwatch.GetElapsedTime(spectraStart).TotalSeconds:0.00} s");
        return (matrices, spectra);
    }

    private static Configuration Configure(ModelAnalysis analysis, PruneOptions options, CalibrationData? calibration,
        LatencyTarget? latency, HashSet<int> ignored, List<ChannelGroup> active, FilterMatrix[] matrices, Dictionary<int, FilterSpectrum> spectrumOf,
        List<ChannelGroup> ranked, Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>>? readers,
        Dictionary<int, ChannelElimination> ranking)
    {
        var groups = analysis.Groups;
        var activeIds = active.Select(g => g.Id).ToHashSet();
        int checkSamples = readers is not null ? SensitivitySamples(analysis, ranked.Count, Math.Min(options.SensitivitySamples, calibration!.Images)) : 0;

        var planning = groups.Select(g => activeIds.Contains(g.Id)
            ? new PlanningGroup(g.Width, ranking.GetValueOrDefault(g.Id) is { } r ? ErrorCurve(r) : spectrumOf[g.Id], MinKeep(g.Width, options.MinKeepFraction), Fixed: false,
                RoundTo: latency is not null && options.RoundTo == 0 && g.Blocks == 1 ? latency.Model.Step : RoundTo(g, options, analysis.MapPixels(g)),
                Weight: ranking.ContainsKey(g.Id) ? CostWeight(analysis, g) : 1)
            : new PlanningGroup(g.Width, null, g.Width, Fixed: true)).ToList();
        var solver = new BudgetSolver();
        var costs = analysis.GroupCosts;
        KeepAllocation Allocate(double ratio) => options.Allocation == AllocationMethod.Uniform
            ? solver.AllocateUniform(planning, costs.Macs, costs.Params, options.Target, ratio, roundTo: 1, latency?.Model)
            : solver.Solve(planning, costs.Macs, costs.Params, options.Target, ratio, roundTo: 1, latency?.Model);
        // Before an end-to-end check, the latency model's prediction is enough (its measured checks run on the final allocation).
        var allocation = latency is null || readers is { Count: > 0 } ? Allocate(options.Ratio) : latency.Allocate(Allocate, options.Ratio);
        if (readers is not null && ranking.Count > 0)
        {
            var before = allocation;
            if (checkSamples == 0) checkSamples = SplitCheckSamples(analysis, options, ranking, readers, before, calibration!);
            var boost = checkSamples > 0 ? EndToEndBoost(analysis, options, ranking, readers, before, calibration!, checkSamples)
                : TailCheck(analysis, options, ranking, readers, calibration!) is { } tail
                    ? EndToEndBoost(analysis, options, ranking, readers, before, calibration!, tail.Samples, tail.Groups, tail.Tail) : [];
            // Each boost applies where the allocation decides the group's next step (SensitivityBoost.AtNextStep).
            var moved = new Dictionary<int, double>();
            for (int i = 0; i < planning.Count; i++)
                if (boost.TryGetValue(groups[i].Id, out double b))
                {
                    moved[groups[i].Id] = SensitivityBoost.AtNextStep(b, ranking[groups[i].Id].RelativeError, planning[i], before.Keep[groups[i].Id]);
                    planning[i] = planning[i] with { Weight = planning[i].Weight * moved[groups[i].Id] };
                }
            allocation = latency is null ? Allocate(options.Ratio) : latency.Allocate(Allocate, options.Ratio);
            foreach (var (id, b) in boost.Where(x => x.Value > 1).OrderBy(x => x.Key))
                options.Log?.Invoke($"end-to-end check: group {id} weighed ×{b:0.00}{(moved[id] > b ? $" (×{moved[id]:0.00} at its next step)" : "")}, keeps {before.Keep[id]} → {allocation.Keep[id]} of {groups[id].Width}");
        }
        // What the threshold was compared with, per group: its curve (σ/σ₁, or a ranked group's error curve) times its weight.
        var curves = new Dictionary<int, double[]>();
        for (int i = 0; i < planning.Count; i++)
            if (planning[i] is { Fixed: false, Spectrum: { } curve } p)
                curves[groups[i].Id] = [.. Enumerable.Range(0, curve.StructuralRank).Select(k => curve.Normalized(k) * p.Weight)];
        var rankCapped = active.Where((g, i) => matrices[i].Cols < matrices[i].Rows).Select(g => g.Id).ToHashSet();
        return new Configuration(active, matrices, spectrumOf, allocation, ignored, ranking, curves, rankCapped);
    }

    /// <summary>A Gram this large (float64 bytes) makes the spectra's garbage worth a collection before the selection (VGG-16's classifier groups: 128 MiB).</summary>
    private const long CollectAfterSpectraBytes = 64L << 20;

    /// <summary>Multiply-adds the end-to-end check may spend on its forward passes (one per ranked group and sample, and a reference).</summary>
    internal const double SensitivityBudgetMacs = 150e9;

    /// <summary>The fewest samples that make the end-to-end check worth its passes.</summary>
    internal const int MinSensitivitySamples = 2;

    /// <summary>Samples the end-to-end check can afford within <see cref="SensitivityBudgetMacs"/> (0: none, the check is skipped).
    /// Counted in MACs, not timed, so that the plan does not depend on the machine's load.</summary>
    internal static int SensitivitySamples(ModelAnalysis analysis, int groups, int wanted)
    {
        double perSample = Math.Max(analysis.Cost.Macs, 1);
        int affordable = (int)Math.Min(wanted, SensitivityBudgetMacs / ((groups + 1) * perSample));
        return affordable >= MinSensitivitySamples ? affordable : 0;
    }

    /// <summary>
    /// Samples the whole-model check can afford within <see cref="SensitivityBudgetMacs"/> counted as it really runs, split as
    /// <see cref="CheckParts"/> splits it (most candidates on the tail after their group, from the original's values), where
    /// <see cref="SensitivitySamples"/>, which prices every candidate at the whole model, finds it over; 0 when fewer than
    /// <see cref="MinSensitivitySamples"/>. PP-OCRv4 det (36 groups, 2.30 GMACs): 131.7 GMACs at 2 samples, 191.6 at 3, where
    /// the whole-model count is 170; the check then measures the backbone too, which the tail check never reached.
    /// </summary>
    private static int SplitCheckSamples(ModelAnalysis analysis, PruneOptions options, Dictionary<int, ChannelElimination> ranking,
        Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>> readers, KeepAllocation allocation, CalibrationData calibration)
    {
        var (candidates, _) = Candidates(analysis, options, ranking, readers, allocation, null);
        int wanted = Math.Min(options.SensitivitySamples, calibration.Images), affordable = 0;
        var tails = new Dictionary<(int, int), TailSensitivity.Tail?>();
        for (int s = MinSensitivitySamples; s <= wanted; s++)
        {
            double macs = CheckParts(analysis, candidates, s, tails).Macs;
            if (macs > SensitivityBudgetMacs)
            {
                if (affordable == 0) options.Log?.Invoke($"end-to-end check: the whole model split into tails would run {macs / 1e9:0.0} G multiply-adds on {s} samples, over {SensitivityBudgetMacs / 1e9:0} G");
                break;
            }
            affordable = s;
        }
        return affordable;
    }

    /// <summary>The check's candidates: each ranked group (of <paramref name="only"/>) at its allocated keep, or half its width
    /// where the allocation left it whole, with the curve's relative error there.</summary>
    private static (Dictionary<int, GroupSensitivity.Candidate> Candidates, Dictionary<int, double> Local) Candidates(ModelAnalysis analysis, PruneOptions options,
        Dictionary<int, ChannelElimination> ranking, Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>> readers,
        KeepAllocation allocation, IReadOnlySet<int>? only)
    {
        var candidates = new Dictionary<int, GroupSensitivity.Candidate>();
        var local = new Dictionary<int, double>();
        foreach (var (id, r) in ranking)
        {
            if (only is not null && !only.Contains(id)) continue;
            var g = analysis.Groups[id];
            // A group the allocation left whole is checked at half its width (above its floor).
            int k = allocation.Keep[id] < g.Width ? allocation.Keep[id] : Math.Max(MinKeep(g.Width, options.MinKeepFraction), g.Width / 2);
            if (k >= g.Width) continue;
            candidates[id] = new GroupSensitivity.Candidate(readers[id], r.Keep(k));
            local[id] = r.RelativeError[k];
        }
        return (candidates, local);
    }

    /// <summary>Multiply-adds the tail check may spend: the cut's values on its samples, then one tail pass per group and a reference.</summary>
    internal const double TailBudgetMacs = 40e9;

    /// <summary>Largest share of the model's MACs a group's tail may take to be checked there.</summary>
    internal const double MaxTailShare = 1.0 / 3;

    /// <summary>
    /// The groups the tail check measures when the whole model is over <see cref="SensitivityBudgetMacs"/>: the ranked groups
    /// nearest the outputs (by their producers' last position in the graph), as many as still leave a tail
    /// (<see cref="TailSensitivity"/>) from their values of at most <see cref="MaxTailShare"/> of the MACs, at least two of them
    /// (one group alone has nothing to be compared with), with the samples <see cref="TailBudgetMacs"/> affords; else null.
    /// A group's value alone may start no tail (one branch of a Concat; an SE block's gate): later groups join until it does.
    /// PP-OCRv4 det: the neck's four output branches (groups 26–33, with their SE squeezes) and the head's two groups (34, 35),
    /// 0.6 of 2.3 GMACs a page.
    /// </summary>
    private static (TailSensitivity.Tail Tail, IReadOnlySet<int> Groups, int Samples)? TailCheck(ModelAnalysis analysis, PruneOptions options,
        Dictionary<int, ChannelElimination> ranking, Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>> readers,
        CalibrationData calibration)
    {
        var graph = analysis.Model.Graph;
        var macs = analysis.Cost.Nodes.ToDictionary(c => c.Node, c => c.Macs);
        long Macs(GraphIO.Node n) => macs.GetValueOrDefault(n);
        var position = graph.Nodes.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i);
        var order = ranking.Keys.Where(readers.ContainsKey)
            .OrderByDescending(id => analysis.Groups[id].Producers.Max(p => position.GetValueOrDefault(p))).ThenBy(id => id).ToList();
        double limit = MaxTailShare * analysis.Cost.Macs;
        TailSensitivity.Tail? tail = null;
        int taken = 0;
        for (int n = 1; n <= order.Count; n++)
        {
            var values = order.Take(n).SelectMany(id => analysis.Groups[id].Producers.Select(p => p.Outputs[0]));
            if (TailSensitivity.Find(graph, values, Macs) is not { } t) continue;
            if (t.Macs > limit) break;
            (tail, taken) = (t, n);
        }
        var ids = order.Take(taken).ToHashSet();
        foreach (int id in readers.Keys.Where(id => !ids.Contains(id)).ToList()) readers.Remove(id); // their moments are not needed
        if (tail is null || ids.Count < 2) return null;
        double perSample = (ids.Count + 1) * (double)Math.Max(tail.Macs, 1) + analysis.Cost.Macs;
        int samples = (int)Math.Min(Math.Min(options.SensitivitySamples, calibration.Images), TailBudgetMacs / perSample);
        return samples >= MinSensitivitySamples ? (tail, ids, samples) : null;
    }

    /// <summary>
    /// The end-to-end check of the calibrated allocation: each ranked group is pruned alone to its first keep count, its
    /// readers re-fitted as its error curve assumes (<see cref="GroupSensitivity"/>), and the model's outputs compared with
    /// the original's on the first fitting samples. A group whose output damage per unit of its curve's local error is above
    /// the geometric mean of all is weighed up by the square root of how far (never down: one measurement at one width
    /// says little about much narrower ones, and cutting groups that looked robust cost more than it bought).
    /// Measured: PP-OCRv4 rec at −50 % MACs, on calibration lines 256–999 (neither calibration nor test data), 95.56 → 97.04 %.
    /// </summary>
    private static Dictionary<int, double> EndToEndBoost(ModelAnalysis analysis, PruneOptions options, Dictionary<int, ChannelElimination> ranking,
        Dictionary<int, IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)>> readers, KeepAllocation allocation,
        CalibrationData calibration, int samples, IReadOnlySet<int>? only = null, TailSensitivity.Tail? tail = null)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        double cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        var (candidates, local) = Candidates(analysis, options, ranking, readers, allocation, only);
        var checkSamples = calibration.Slice(0, samples);
        var parts = tail is null ? CheckParts(analysis, candidates, samples).Parts : [];
        var measured = tail is not null ? TailSensitivity.Measure(analysis.Model, tail, candidates, checkSamples, options.Provider)
            : parts.Count == 0 ? GroupSensitivity.Measure(analysis.Model, candidates, checkSamples, options.Provider)
            : Measure(analysis.Model, candidates, parts, checkSamples, options.Provider);
        // In the candidates' order whatever part measured them, so the boost's mean adds the same terms in the same order.
        var damage = candidates.Keys.Where(measured.ContainsKey).ToDictionary(id => id, id => measured[id]);
        var boost = SensitivityBoost.From(damage, local);
        // Cut values are exporter names (det's are four `conv2d_…`); the group ids and the tail's share say what was run.
        string which = damage.Count < ranking.Count ? $" (groups {string.Join(", ", damage.Keys.Order())})" : "";
        string where = tail is not null ? $" by running the model's tail only ({tail.Macs / 1e9:0.00} of {analysis.Cost.Macs / 1e9:0.00} GMACs a sample)"
            : parts.Count > 0 ? $" ({string.Join(", ", parts.Select(p => $"{p.Ids.Count} on a {p.Tail.Macs / 1e9:0.00}-GMAC tail"))} of the {analysis.Cost.Macs / 1e9:0.00}-GMAC model, from the original's values)" : "";
        options.Log?.Invoke($"end-to-end check: {damage.Count} of {ranking.Count} ranked groups measured{which}{where} on {samples} samples, {boost.Count(b => b.Value > 1)} weighed up ({watch.Elapsed.TotalSeconds:0.0} s, {System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - cpu:0.0} CPU s)");
        return boost;
    }

    /// <summary>
    /// What creating an optimised session costs, in the multiply-adds a run does meanwhile (PP-OCRv4 rec: 0.11 CPU s for the
    /// whole model's session, 24 ms a 0.49-GMAC sample run): the price of each part the whole-model check is split into.
    /// </summary>
    internal const double CheckSessionMacs = 2e9;

    /// <summary>
    /// How the whole-model check may run less of the model: each candidate needs only the part after its group (the tail from
    /// its producers' values, <see cref="TailSensitivity.Find"/>), so candidates in depth order are split into runs that share
    /// one tail session (cut at the first one's values), all cuts computed by one run of the original model; the candidates
    /// nowhere near the outputs stay on the whole model. The split minimises the multiply-adds run, each session counted as
    /// <see cref="CheckSessionMacs"/>; empty when no split beats running every candidate on the whole model (small models,
    /// where sessions cost more than runs). PP-OCRv4 rec's 20 groups at −50 %: the later ones' tails are 0.1–0.5 of the model.
    /// Returns the parts and the multiply-adds the check runs with them (with none: on the whole model).
    /// </summary>
    /// <param name="tails">The tail of each run of candidates [i, j) in depth order, filled as found (they do not depend on the samples).</param>
    private static (List<(TailSensitivity.Tail Tail, List<int> Ids)> Parts, double Macs) CheckParts(ModelAnalysis analysis,
        IReadOnlyDictionary<int, GroupSensitivity.Candidate> candidates, int samples, Dictionary<(int, int), TailSensitivity.Tail?>? tails = null)
    {
        tails ??= [];
        var graph = analysis.Model.Graph;
        var macs = analysis.Cost.Nodes.ToDictionary(c => c.Node, c => c.Macs);
        var position = graph.Nodes.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i);
        var order = candidates.Keys.OrderBy(id => analysis.Groups[id].Producers.Max(p => position.GetValueOrDefault(p))).ThenBy(id => id).ToList();
        int n = order.Count;
        double whole = Math.Max(analysis.Cost.Macs, 1);
        // best[j]: the cheapest split of the first j candidates; a part [i, j) runs on its tail, or on the whole model (null).
        var best = new double[n + 1];
        var from = new int[n + 1];
        var chosen = new TailSensitivity.Tail?[n + 1];
        for (int j = 1; j <= n; j++)
        {
            best[j] = double.PositiveInfinity;
            for (int i = 0; i < j; i++)
            {
                if (!tails.TryGetValue((i, j), out var tail))
                {
                    var ids = order.GetRange(i, j - i);
                    tail = TailSensitivity.Find(graph, ids.SelectMany(id => analysis.Groups[id].Producers.Select(p => p.Outputs[0])), node => macs.GetValueOrDefault(node));
                    if (tail is not null && !ids.All(id => tail.Holds(candidates[id]))) tail = null;
                    tails[(i, j)] = tail;
                }
                double cost = best[i] + CheckSessionMacs + (double)samples * (j - i + 1) * (tail?.Macs ?? whole);
                if (cost < best[j]) (best[j], from[j], chosen[j]) = (cost, i, tail);
            }
        }
        var parts = new List<(TailSensitivity.Tail? Tail, List<int> Ids)>();
        for (int j = n; j > 0; j = from[j]) parts.Insert(0, (chosen[j], order.GetRange(from[j], j - from[j])));
        var tailParts = parts.Where(p => p.Tail is not null).Select(p => (p.Tail!, p.Ids)).ToList();
        // The whole-model parts merged into one (one reference and session), and the run that computes the cuts.
        int onWhole = parts.Where(p => p.Tail is null).Sum(p => p.Ids.Count);
        double split = tailParts.Sum(p => CheckSessionMacs + (double)samples * (p.Ids.Count + 1) * p.Item1.Macs)
            + (onWhole > 0 ? CheckSessionMacs + (double)samples * (onWhole + 1) * whole : 0) + CheckSessionMacs + samples * whole;
        double unsplit = CheckSessionMacs + (double)samples * (n + 1) * whole;
        return tailParts.Count > 0 && split < unsplit ? (tailParts, split) : ([], unsplit);
    }

    /// <summary>The whole-model check split as <see cref="CheckParts"/> chose: the tails' candidates on their tails, the rest on the whole model.</summary>
    private static Dictionary<int, double> Measure(GraphIO.OnnxModel model, IReadOnlyDictionary<int, GroupSensitivity.Candidate> candidates,
        List<(TailSensitivity.Tail Tail, List<int> Ids)> parts, IReadOnlyList<Runtime.NamedTensor> samples, Runtime.Provider provider)
    {
        var onTails = parts.SelectMany(p => p.Ids).ToHashSet();
        var damage = TailSensitivity.Measure(model, [.. parts.Select(p => (p.Tail, (IReadOnlyDictionary<int, GroupSensitivity.Candidate>)p.Ids.ToDictionary(id => id, id => candidates[id])))],
            samples, provider);
        var rest = candidates.Where(c => !onTails.Contains(c.Key)).ToDictionary(c => c.Key, c => c.Value);
        if (rest.Count > 0)
            foreach (var (id, d) in GroupSensitivity.Measure(model, rest, samples, provider)) damage[id] = d;
        return damage;
    }

    /// <summary>Both sub-problems: the keep counts, then which filters (GEM or a baseline criterion).</summary>
    /// <remarks>With <c>--criterion refit</c>, groups that could not be ranked (no reader measured) fall back to GEM.</remarks>
    public static KeepPlan Plan(ModelAnalysis analysis, PruneOptions options, CalibrationData? calibration = null,
        LatencyTarget? latency = null, TargetRecording? recording = null)
    {
        var selector = FilterSelectors.Create(options.Refit ? "gem" : options.EffectiveCriterion.ToString().ToLowerInvariant(), options.Seed);
        // GEM's first epochs on wide groups may start beside the spectra; not while the calibrated ranking or the latency
        // model runs (their sessions and timings would share the cores with it).
        var config = Configure(analysis, options, calibration, latency, recording, !options.Refit && latency is null ? selector as GemSelector : null);
        var keeps = config.Active.Select(g => config.Allocation.Keep[g.Id]).ToList();
        var unranked = Enumerable.Range(0, config.Active.Count).Where(i => !config.Ranking.ContainsKey(config.Active[i].Id)).ToList();
        // One selection per group, or per conv group of a tied group (the same count from each; its rows only).
        var jobs = new List<(int Active, int First, FilterMatrix Matrix, int Keep)>();
        foreach (int i in unranked)
        {
            var group = config.Active[i];
            if (group.Blocks == 1 || keeps[i] == group.Width)
            {
                jobs.Add((i, 0, config.Matrices[i], keeps[i]));
                continue;
            }
            config.Matrices[i].ReleaseCache();
            for (int b = 0; b < group.Blocks; b++)
                jobs.Add((i, b * group.BlockWidth, BlockRows(config.Matrices[i], b * group.BlockWidth, group.BlockWidth), keeps[i] / group.Blocks));
        }
        var chosen = FilterSelectors.SelectAll(selector, [.. jobs.Select(j => j.Matrix)], [.. jobs.Select(j => j.Keep)]);
        var selected = new int[config.Active.Count][];
        foreach (var (i, parts) in jobs.Select((job, n) => (job, n)).GroupBy(x => x.job.Active, x => x).Select(g => (g.Key, g.ToList())))
            selected[i] = [.. parts.SelectMany(p => chosen[p.n].Select(c => p.job.First + c)).Order()];
        for (int i = 0; i < config.Active.Count; i++)
            if (config.Ranking.GetValueOrDefault(config.Active[i].Id) is { } r)
            {
                selected[i] = r.Keep(keeps[i]);
                config.Matrices[i].ReleaseCache(); // the Gram its spectrum left for GEM, which this group does not run
            }
        var keepByGroup = new Dictionary<int, int[]>();
        var keptGrams = new Dictionary<int, KeptGram>();
        for (int i = 0; i < config.Active.Count; i++)
        {
            // Taken from every matrix (none is left behind on one); passed on only for groups that lose channels.
            var gram = config.Matrices[i].TakeKeptGram();
            if (selected[i].Length < config.Active[i].Width)
            {
                keepByGroup[config.Active[i].Id] = selected[i];
                if (gram is not null) keptGrams[config.Active[i].Id] = gram;
            }
        }
        var notes = new List<string>();
        if (options.Refit)
            notes.Add($"refit ranking: {config.Ranking.Count} of {config.Active.Count} groups ranked on calibration data" +
                (unranked.Count > 0 ? $"; {unranked.Count} tied into conv groups or with no measurable reader (e.g. a Flatten of a spatial map) use GEM and their weight spectrum" : ""));
        return new KeepPlan { KeepByGroup = keepByGroup, KeptGrams = keptGrams, Spectra = config.Spectra, RankCapped = config.RankCapped, AllocationCurves = config.Curves, Allocation = config.Allocation, Ignored = config.Ignored, Notes = notes };
    }

    /// <param name="Spectra">Per active group the allocation read it for (all without a calibrated ranking), its weight spectrum.</param>
    /// <param name="Curves">Per prunable group, the values the allocation's threshold was compared with (see <see cref="KeepPlan.AllocationCurves"/>).</param>
    /// <param name="RankCapped">Active groups whose filters are shorter than the group is wide (see <see cref="FilterSpectrum.IsRankCapped"/>).</param>
    public sealed record Configuration(IReadOnlyList<ChannelGroup> Active, IReadOnlyList<FilterMatrix> Matrices,
        IReadOnlyDictionary<int, FilterSpectrum> Spectra, KeepAllocation Allocation, IReadOnlySet<int> Ignored,
        IReadOnlyDictionary<int, ChannelElimination> Ranking, IReadOnlyDictionary<int, double[]> Curves, IReadOnlySet<int> RankCapped);

    /// <summary>
    /// The relative error curve e(k) (k kept, k &lt; width) read as a spectrum: non-increasing from e(0) ≈ 1, so
    /// the global threshold keeps, in every group, the fewest channels whose removal costs less than it.
    /// </summary>
    private static FilterSpectrum ErrorCurve(ChannelElimination r) =>
        FilterSpectrum.FromSingularValues(r.Width, r.Width, r.RelativeError.AsSpan(0, r.Width));

    /// <summary>
    /// Refit error curves are weighed by cost: mean MACs per channel over this group's. The threshold then equalises
    /// the error a channel's removal causes per MAC it saves, so a group whose channels cost little (an SE squeeze, a
    /// late narrow map) is not pruned as hard as one where each channel buys much. Measured: PP-OCRv4 rec at −50 % MACs
    /// 90.0 → 93.6 % line accuracy; the Fashion-MNIST ResNet 92.95 → 92.75 % (see README).
    /// </summary>
    private static double CostWeight(ModelAnalysis analysis, ChannelGroup g)
    {
        double perChannel = analysis.MacsShare(g) / g.Width;
        var prunable = analysis.Groups.Where(x => x.Prunable).ToList();
        double mean = prunable.Sum(analysis.MacsShare) / prunable.Sum(x => x.Width);
        return mean / Math.Max(perChannel, 1e-6 * mean);
    }

    /// <summary>
    /// Keep-count step of a group: its width rounding; for a group tied into conv groups, the same count in each conv
    /// group, rounded per conv group only when --round-to asks for a step that divides the conv group's width.
    /// </summary>
    public static int RoundTo(ChannelGroup group, PruneOptions options, long mapPixels)
    {
        if (group.Blocks == 1) return options.RoundFor(group.Width, mapPixels);
        return options.RoundTo > 1 && group.BlockWidth % options.RoundTo == 0 ? group.Blocks * options.RoundTo : group.Blocks;
    }

    /// <summary>Rows [first, first+count) of a group's matrix without the columns they leave zero (another conv group's inputs).</summary>
    private static FilterMatrix BlockRows(FilterMatrix matrix, int first, int count)
    {
        var used = new List<int>();
        for (int c = 0; c < matrix.Cols; c++)
            for (int r = first; r < first + count; r++)
                if (matrix.Data[r * matrix.Cols + c] != 0) { used.Add(c); break; }
        if (used.Count == 0) used.Add(0);
        var data = new double[count * used.Count];
        for (int r = 0; r < count; r++)
            for (int k = 0; k < used.Count; k++) data[r * used.Count + k] = matrix.Data[(first + r) * matrix.Cols + used[k]];
        return new FilterMatrix(count, used.Count, data);
    }

    /// <summary>Default floor: at least one channel and the given fraction of the width.</summary>
    public static int MinKeep(int width, double fraction) => Math.Clamp((int)Math.Ceiling(width * fraction), 1, width);

    /// <summary>Replays a plan file: groups are matched by their producer names, and must have the same width.</summary>
    public static KeepPlan FromFile(ModelAnalysis analysis, PlanFile file)
    {
        // Sub-ranges of one producer's output can list the same producers: those match in order.
        var byProducers = analysis.Groups.GroupBy(g => string.Join("\n", g.Producers.Select(p => p.Id)))
            .ToDictionary(g => g.Key, g => new Queue<ChannelGroup>(g));
        var keep = new Dictionary<int, int[]>();
        foreach (var entry in file.Groups)
        {
            if (!byProducers.TryGetValue(string.Join("\n", entry.Producers), out var candidates) || !candidates.TryDequeue(out var group))
                throw new PruningException($"plan group {entry.Id} (producers {string.Join(", ", entry.Producers.Take(3))}) does not match any channel group of this model");
            if (group.Width != entry.Channels)
                throw new PruningException($"plan group {entry.Id} has {entry.Channels} channels, the model's group has {group.Width}");
            if (entry.Keep.Count == group.Width) continue;
            if (group.Frozen) throw new PruningException($"plan group {entry.Id} prunes a group that is frozen in this model ({group.Reason})");
            var sorted = entry.Keep.Distinct().Order().ToArray();
            if (sorted.Length != entry.Keep.Count || sorted.Length == 0 || sorted[0] < 0 || sorted[^1] >= group.Width)
                throw new PruningException($"plan group {entry.Id} keeps invalid channel indices (need distinct values in [0, {group.Width}))");
            if (!group.KeepsEqualBlocks(sorted))
                throw new PruningException($"plan group {entry.Id} is {group.Blocks} conv groups of {group.BlockWidth} channels; it must keep the same count in each");
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
