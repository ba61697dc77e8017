namespace OnnxSlim.Spectral;

/// <summary>
/// Pruning configuration: how many filters each group keeps so that a model-level budget is met.
/// <para>
/// SLIMING: normalise every group's spectrum by its σ₁ (BN folding rescales filters arbitrarily, so
/// raw σ are not comparable across groups), take one global threshold τ and keep
/// N = #{i : σᵢ/σ₁ ≥ τ}; τ is searched until the budget is met. Concretely every singular value is a
/// "unit" of its group, all units sorted by σᵢ/σ₁ descending; keeping a prefix of that list is the
/// threshold rule with ties broken deterministically, and the prefix length is binary-searched
/// (the finest granularity any threshold can have).
/// </para>
/// <para>
/// Rank cap: a group with cols &lt; rows (a 1-channel 3×3 stem is 64×9, a depthwise conv C×9) has at
/// most r = cols non-zero σ, and the plain rule keeps ≤ r filters at every budget — 9 of 64 channels,
/// which destroys the model. The zero tail there is structural (a non-linearity follows), not
/// redundancy, so we read only the structural spectrum σ₁..σ_r and map the fraction of it above τ onto
/// the width: N = ⌈W · #{i ≤ r : σᵢ/σ₁ ≥ τ} / r⌉. For r = W this IS the plain rule; a capped group is
/// pruned in proportion to the redundancy visible in its non-zero spectrum, keeps its whole width as
/// τ → 0, and moves in steps of W/r filters. A dead group (all σ = 0) has normalised values 0: it is
/// the first to drop to its floor and never produces NaN.
/// </para>
/// Bounds: N is clamped to [MinKeep, Width]; with roundTo = R &gt; 1 every non-fixed keep is then rounded
/// to the nearest multiple of R inside [MinKeep, Width] (or to Width when none exists), and the search
/// runs on the rounded counts, so the budget is still met as closely as the rounding allows.
/// </summary>
public sealed class BudgetSolver
{
    /// <summary>Largest accepted |achieved − requested| reduction (absolute), default 1%.</summary>
    public double Tolerance { get; init; } = 0.01;

    /// <summary>SLIMING allocation (one global σ/σ₁ threshold).</summary>
    /// <param name="latency">The cost model of <see cref="BudgetTarget.Latency"/> (needed for that target only).</param>
    public KeepAllocation Solve(IReadOnlyList<PlanningGroup> groups, IReadOnlyList<CostTerm>? macs,
        IReadOnlyList<CostTerm>? @params, BudgetTarget target, double reduction, int roundTo, LatencyModel? latency = null)
    {
        var model = new Model(groups, macs, @params, latency, target, reduction, roundTo, needSpectra: true);
        // Units: (value, group), best first. Ties: lower group, then lower index (stable sort).
        var units = new List<(double Value, int Group)>();
        for (int g = 0; g < groups.Count; g++)
        {
            var grp = groups[g];
            if (grp.Fixed) continue;
            var sp = grp.Spectrum!;
            for (int i = 0; i < sp.StructuralRank; i++) units.Add((sp.Normalized(i) * grp.Weight, g));
        }
        var ordered = units.Select((u, idx) => (u.Value, u.Group, idx))
            .OrderByDescending(u => u.Value).ThenBy(u => u.Group).ThenBy(u => u.idx)
            .Select(u => (u.Value, u.Group)).ToArray();

        var counts = new int[groups.Count];
        int[] KeepFor(int prefix)
        {
            Array.Clear(counts);
            for (int u = 0; u < prefix; u++) counts[ordered[u].Group]++;
            var keep = new int[groups.Count];
            for (int g = 0; g < groups.Count; g++)
                keep[g] = groups[g].Fixed ? groups[g].Width : model.Round(g, MapCount(groups[g], counts[g]));
            return keep;
        }
        int best = Search(ordered.Length, p => model.Reduction(KeepFor(p)), model.Requested);
        double threshold = best == 0 ? Math.BitIncrement(1.0) : ordered[best - 1].Value;
        var keep = KeepFor(best);
        model.Refine(keep, Tolerance);
        return model.Result(AllocationMethod.Sliming, keep, threshold, Tolerance);
    }

    /// <summary>Baseline: the same keep fraction f in every non-fixed group, f searched for the budget.</summary>
    public KeepAllocation AllocateUniform(IReadOnlyList<PlanningGroup> groups, IReadOnlyList<CostTerm>? macs,
        IReadOnlyList<CostTerm>? @params, BudgetTarget target, double reduction, int roundTo, LatencyModel? latency = null)
    {
        var model = new Model(groups, macs, @params, latency, target, reduction, roundTo, needSpectra: false);
        int[] KeepFor(double f)
        {
            var keep = new int[groups.Count];
            for (int g = 0; g < groups.Count; g++)
            {
                var grp = groups[g];
                keep[g] = grp.Fixed ? grp.Width
                    : model.Round(g, Math.Clamp((int)Math.Round(f * grp.Width, MidpointRounding.AwayFromZero), grp.MinKeep, grp.Width));
            }
            return keep;
        }
        // Reduction is non-increasing in f: bisect for the largest f still meeting the request,
        // then take whichever side of that step is closer.
        double lo = 0, hi = 1;
        if (model.Reduction(KeepFor(0)) < model.Requested) hi = 0;
        else
            for (int it = 0; it < 64; it++)
            {
                double mid = 0.5 * (lo + hi);
                if (model.Reduction(KeepFor(mid)) >= model.Requested) lo = mid; else hi = mid;
            }
        double f = lo;
        if (hi > lo && Math.Abs(model.Reduction(KeepFor(hi)) - model.Requested) < Math.Abs(model.Reduction(KeepFor(lo)) - model.Requested))
            f = hi;
        var keep = KeepFor(f);
        model.Refine(keep, Tolerance);
        return model.Result(AllocationMethod.Uniform, keep, f, Tolerance);
    }

    /// <summary>
    /// Keep count of one group at threshold τ under the rank-cap-aware rule, before rounding
    /// (what <c>analyze</c> prints per group).
    /// </summary>
    public static int KeepAtThreshold(PlanningGroup group, double threshold)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (group.Fixed) return group.Width;
        if (group.Spectrum is null) throw new ArgumentException("a non-fixed group needs a spectrum", nameof(group));
        return MapCount(group, group.Spectrum.CountAtOrAbove(threshold / group.Weight));
    }

    // N = clamp(⌈W·c/r⌉, MinKeep, W): c of the r structural singular values are above the threshold.
    private static int MapCount(PlanningGroup g, int count)
    {
        int r = g.Spectrum!.StructuralRank;
        long n = ((long)g.Width * count + r - 1) / r;
        return (int)Math.Clamp(n, g.MinKeep, g.Width);
    }

    // Largest prefix p in [0, max] whose reduction still reaches the request, or its neighbour p+1
    // when that lands closer. Reduction is non-increasing in p.
    private static int Search(int max, Func<int, double> reductionAt, double requested)
    {
        if (reductionAt(0) < requested) return 0; // unreachable: prune as far as the floors allow
        int lo = 0, hi = max;                    // invariant: reductionAt(lo) ≥ requested
        while (lo < hi)
        {
            int mid = lo + (hi - lo + 1) / 2;
            if (reductionAt(mid) >= requested) lo = mid; else hi = mid - 1;
        }
        if (lo < max && Math.Abs(reductionAt(lo + 1) - requested) < Math.Abs(reductionAt(lo) - requested)) return lo + 1;
        return lo;
    }

    /// <summary>
    /// The keep count <paramref name="n"/> rounded as the solver rounds it: the nearest multiple of the group's step
    /// (<paramref name="roundTo"/> where it has none) in [MinKeep, Width], else Width; ties go up.
    /// </summary>
    public static int Round(PlanningGroup grp, int n, int roundTo = 1)
    {
        ArgumentNullException.ThrowIfNull(grp);
        int r = grp.RoundTo > 0 ? grp.RoundTo : roundTo;
        if (r == 1) return n;
        int lowest = (grp.MinKeep + r - 1) / r * r;
        if (lowest > grp.Width) return grp.Width;
        int down = n / r * r, up = down + r;
        if (down < lowest) return lowest;
        int best = up <= grp.Width ? (n - down < up - n ? down : up) : down;
        // Width itself is always allowed: prefer it when it is nearer than the last multiple.
        if (grp.Width - n < Math.Abs(n - best)) best = grp.Width;
        return best;
    }

    /// <summary>
    /// The fewest units of the group's curve above the threshold (its keep count before rounding) that round to more than
    /// <paramref name="keep"/>: the allocation moves the group to its next step above <paramref name="keep"/> exactly when
    /// the unit at this count − 1 is above the threshold; 0 when no count does (the group is whole).
    /// </summary>
    public static int NextStepCount(PlanningGroup grp, int keep, int roundTo = 1)
    {
        ArgumentNullException.ThrowIfNull(grp);
        for (int c = keep + 1; c <= grp.Width; c++)
            if (Round(grp, c, roundTo) > keep) return c;
        return 0;
    }

    /// <summary>Validated inputs plus the metric arithmetic shared by both methods.</summary>
    private sealed class Model
    {
        private readonly IReadOnlyList<PlanningGroup> _groups;
        private readonly IReadOnlyList<CostTerm>? _macs, _params;
        private readonly LatencyModel? _latency;
        private readonly BudgetTarget _target;
        private readonly int _roundTo;
        private readonly double _fullMacs, _fullParams, _fullFilters, _fullLatency;

        public Model(IReadOnlyList<PlanningGroup> groups, IReadOnlyList<CostTerm>? macs, IReadOnlyList<CostTerm>? @params,
            LatencyModel? latency, BudgetTarget target, double reduction, int roundTo, bool needSpectra)
        {
            ArgumentNullException.ThrowIfNull(groups);
            if (groups.Count == 0) throw new ArgumentException("no groups to plan", nameof(groups));
            if (!(reduction >= 0 && reduction < 1))
                throw new ArgumentException($"reduction must be in [0, 1), got {reduction}", nameof(reduction));
            if (roundTo < 1) throw new ArgumentException($"roundTo must be at least 1, got {roundTo}", nameof(roundTo));
            if (!Enum.IsDefined(target)) throw new ArgumentException($"unknown budget target {target}", nameof(target));
            for (int g = 0; g < groups.Count; g++)
            {
                var grp = groups[g] ?? throw new ArgumentException($"groups[{g}] is null", nameof(groups));
                if (grp.Width < 1) throw new ArgumentException($"group {g}: width must be at least 1, got {grp.Width}", nameof(groups));
                if (grp.RoundTo < 0) throw new ArgumentException($"group {g}: RoundTo must be 0 (solver's) or positive, got {grp.RoundTo}", nameof(groups));
                if (grp.MinKeep < 1 || grp.MinKeep > grp.Width)
                    throw new ArgumentException($"group {g}: MinKeep must be in 1..{grp.Width}, got {grp.MinKeep}", nameof(groups));
                if (grp.Spectrum is { } sp && sp.Width != grp.Width)
                    throw new ArgumentException($"group {g}: spectrum is of a {sp.Width}-row matrix but the group is {grp.Width} wide", nameof(groups));
                if (needSpectra && !grp.Fixed && grp.Spectrum is null)
                    throw new ArgumentException($"group {g} is not fixed but has no spectrum", nameof(groups));
            }
            CheckTerms(macs, groups.Count, nameof(macs));
            CheckTerms(@params, groups.Count, nameof(@params));
            if (latency is not null && latency.MaxGroup >= groups.Count)
                throw new ArgumentException($"the latency model reads group {latency.MaxGroup}, but there are {groups.Count} groups", nameof(latency));
            if (target == BudgetTarget.Latency && latency is null)
                throw new ArgumentException("the latency target needs a latency model", nameof(latency));
            _groups = groups; _macs = macs; _params = @params; _latency = latency; _target = target; _roundTo = roundTo;
            Requested = reduction;
            var full = groups.Select(g => g.Width).ToArray();
            _fullMacs = macs is null ? 0 : CostTerm.Total(macs, full);
            _fullParams = @params is null ? 0 : CostTerm.Total(@params, full);
            _fullFilters = groups.Where(g => !g.Fixed).Sum(g => (double)g.Width);
            _fullLatency = latency is null ? 0 : latency.Milliseconds(full);
            double fullTarget = target switch
            {
                BudgetTarget.Macs => _fullMacs, BudgetTarget.Params => _fullParams, BudgetTarget.Latency => _fullLatency, _ => _fullFilters,
            };
            if (!(fullTarget > 0) && target != BudgetTarget.Filters)
                throw new ArgumentException($"the {target} cost model is empty (total {fullTarget}); cannot budget on it",
                    target switch { BudgetTarget.Macs => nameof(macs), BudgetTarget.Latency => nameof(latency), _ => nameof(@params) });
        }

        public double Requested { get; }

        private static void CheckTerms(IReadOnlyList<CostTerm>? terms, int groups, string name)
        {
            if (terms is null) return;
            for (int t = 0; t < terms.Count; t++)
            {
                var c = terms[t];
                if (c.OutGroup < -1 || c.OutGroup >= groups)
                    throw new ArgumentException($"{name}[{t}]: OutGroup {c.OutGroup} is outside -1..{groups - 1}", name);
                if (c.InGroup < -1 || c.InGroup >= groups)
                    throw new ArgumentException($"{name}[{t}]: InGroup {c.InGroup} is outside -1..{groups - 1}", name);
                if (!(c.Coefficient >= 0) || double.IsInfinity(c.Coefficient))
                    throw new ArgumentException($"{name}[{t}]: coefficient {c.Coefficient} must be finite and non-negative", name);
            }
        }

        /// <summary>Nearest allowed keep (multiple of roundTo in [MinKeep, Width], else Width); ties go up.</summary>
        public int Round(int g, int n) => BudgetSolver.Round(_groups[g], n, _roundTo);

        public double Reduction(int[] keep) => Metric(_target, keep);

        /// <summary>
        /// When rounding (or a capped group's W/r steps) leaves the budget outside the tolerance, move
        /// single groups one allowed step at a time, each time taking the step that lands closest —
        /// preferring, on ties, the group whose spectrum says the filters in question matter least.
        /// </summary>
        public void Refine(int[] keep, double tolerance)
        {
            double gap = Math.Abs(Reduction(keep) - Requested);
            for (int iter = 0; iter < 8 * keep.Length && gap > tolerance; iter++)
            {
                int bestG = -1, bestK = 0;
                double bestGap = gap, bestDamage = double.MaxValue;
                for (int g = 0; g < keep.Length; g++)
                {
                    if (_groups[g].Fixed) continue;
                    foreach (int k in new[] { Step(g, keep[g], -1), Step(g, keep[g], +1) })
                    {
                        if (k == keep[g]) continue;
                        int old = keep[g];
                        keep[g] = k;
                        double cand = Math.Abs(Reduction(keep) - Requested);
                        keep[g] = old;
                        double damage = Damage(g, old, k);
                        if (cand < bestGap - 1e-12 || (Math.Abs(cand - bestGap) <= 1e-12 && bestG >= 0 && damage < bestDamage))
                        { bestG = g; bestK = k; bestGap = cand; bestDamage = damage; }
                    }
                }
                if (bestG < 0) break;
                keep[bestG] = bestK;
                gap = bestGap;
            }
        }

        // Next allowed keep from k in direction dir (k itself when there is none).
        private int Step(int g, int k, int dir)
        {
            var grp = _groups[g];
            for (int c = k + dir; c >= grp.MinKeep && c <= grp.Width; c += dir)
                if (Round(g, c) == c) return c;
            return k;
        }

        // How much the spectrum objects: σ/σ₁ of the structural unit dropped (down) or 1 − that of the one added (up).
        private double Damage(int g, int from, int to)
        {
            var sp = _groups[g].Spectrum;
            if (sp is null) return 0;
            int r = sp.StructuralRank, w = _groups[g].Width;
            int unit = (int)Math.Clamp((long)Math.Min(from, to) * r / w, 0, r - 1);
            double weight = _groups[g].Weight, v = sp.Normalized(unit) * weight;
            return to < from ? v : weight - v;
        }

        private double Metric(BudgetTarget t, int[] keep)
        {
            switch (t)
            {
                case BudgetTarget.Macs: return _fullMacs > 0 ? 1 - CostTerm.Total(_macs!, keep) / _fullMacs : double.NaN;
                case BudgetTarget.Params: return _fullParams > 0 ? 1 - CostTerm.Total(_params!, keep) / _fullParams : double.NaN;
                case BudgetTarget.Latency: return _fullLatency > 0 ? 1 - _latency!.Milliseconds(keep) / _fullLatency : double.NaN;
                default:
                    if (!(_fullFilters > 0)) return 0;
                    double s = 0;
                    for (int g = 0; g < keep.Length; g++) if (!_groups[g].Fixed) s += keep[g];
                    return 1 - s / _fullFilters;
            }
        }

        public KeepAllocation Result(AllocationMethod method, int[] keep, double threshold, double tolerance)
        {
            var floors = new int[_groups.Count];
            for (int g = 0; g < floors.Length; g++)
                floors[g] = _groups[g].Fixed ? _groups[g].Width : Round(g, _groups[g].MinKeep);
            double achieved = Reduction(keep);
            var capped = _groups.Select(g => !g.Fixed && g.Spectrum is { IsRankCapped: true }).ToArray();
            return new KeepAllocation(method, _target, keep, capped, threshold, Requested, achieved,
                Reduction(floors), Math.Abs(achieved - Requested) <= tolerance,
                Metric(BudgetTarget.Macs, keep), Metric(BudgetTarget.Params, keep), Metric(BudgetTarget.Filters, keep), Metric(BudgetTarget.Latency, keep));
        }
    }
}
