using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// GEM: greedy elimination maximising the nuclear norm of the kept rows — repeatedly drop the row whose
/// removal loses the least nuclear norm, one row at a time, until <c>keep</c> remain.
/// <para>
/// How it is made fast (the exact greedy is O(C⁵) naively), in epochs (<see cref="GemEpoch"/>):
/// an epoch factorises the kept rows' Gram once (G = Q·T·Qᵀ, GEMM-bound O(n³)) and gets every row's
/// EXACT leave-one-out loss from it (<see cref="ResolventQuadrature"/>: O(n) per row and quadrature
/// node). Rows then go one at a time, lazily: the nuclear norm of a row set is submodular (x^(−1/2)
/// is operator monotone decreasing), so removals only raise the others' losses and stale values are
/// lower bounds; the popped minimum is re-evaluated before it is accepted. The re-evaluation is exact
/// with respect to the removed rows that explain a noticeable share (≥ <see cref="ConflictThreshold"/>²)
/// of the candidate's resolvent diagonal R_jj at t = 0.01σ₁ or 0.1σ₁ — a Schur complement on that
/// small set. That is what keeps one member of every near-duplicate family, where scoring once and
/// deleting a batch drops whole families. Diffuse interactions are picked up at the next epoch, after
/// at most <see cref="BatchFraction"/> of the rows; and an epoch ends early when the candidate's
/// unexplained share exceeds <see cref="MaxUnexplained"/> (many weak removals adding up).
/// </para>
/// Accuracy: within 0.5% of <see cref="ExactGreedySelector"/>'s kept nuclear norm (tests: random,
/// low-rank + noise, near-duplicate families, tall).
/// </summary>
public sealed class GemSelector : IFilterSelector
{
    /// <summary>Largest fraction of the current rows removed between two factorisations.</summary>
    public double BatchFraction { get; init; } = 0.25;

    /// <summary>A removed row whose whitened share of R_jj reaches this value squared is part of j's re-evaluation.</summary>
    public double ConflictThreshold { get; init; } = 0.15;

    /// <summary>At most this many (largest-share) removed rows enter one re-evaluation.</summary>
    public int MaxConflicts { get; init; } = 8;

    /// <summary>An epoch ends when the next row's R_jj has more than this share explained by removals its value missed.</summary>
    public double MaxUnexplained { get; init; } = 0.5;

    /// <summary>
    /// Groups wider than this end an epoch only on <see cref="BatchFraction"/>, not on <see cref="MaxUnexplained"/>.
    /// Why: in a wide, diffuse layer (VGG-16's 4096-wide classifier) every removal explains a little of every row,
    /// the unexplained share passes 0.5 after ~3–10% of the rows, and each extra epoch is an n³ factorisation
    /// (~25 s at n = 4096); there the next epoch's exact losses catch what the lazy values missed. Measured on
    /// vgg16_bn's fc2 (keep 2272 of 4096): 3 factorisations instead of 6, half the time, kept nuclear norm
    /// 1355.39 against 1355.45 (−0.004%; L2 norms: 1354.89). Narrower groups (every group of ResNet-50,
    /// MobileNetV2 and the R50-FPN detectors) are unchanged.
    /// </summary>
    public int DiffuseMinRows { get; init; } = 2048;

    /// <summary>
    /// In a group wider than <see cref="DiffuseMinRows"/>, an epoch also takes the rows that would be left for one
    /// more epoch when they are at most this fraction of its budget. Why: each epoch is an n³ factorisation, and
    /// vgg16_bn's fc2 (keep 2272 of 4096) spent a third one (n = 2304, ~4 CPU s) on its last 32 rows; with the rule its
    /// second epoch takes 800 rows instead of 768: kept nuclear norm 1355.2878 against 1355.3903 (−0.008%).
    /// </summary>
    public double DiffuseTail { get; init; } = 0.25;

    internal static Action<string>? Trace { get => GemEpoch.Trace; set => GemEpoch.Trace = value; }

    public int[] Select(FilterMatrix m, int keep) => Select(m, keep, out _);

    /// <summary><see cref="Select(FilterMatrix, int)"/>, also saying how many epochs (factorisations) it took.</summary>
    internal int[] Select(FilterMatrix m, int keep, out int epochs)
    {
        epochs = 0;
        SelectorArgs.CheckKeep(m, keep);
        if (!(BatchFraction > 0 && BatchFraction <= 1))
            throw new ArgumentException($"BatchFraction must be in (0, 1], got {BatchFraction}");
        // Reuse (and release) the Gram factorisation FilterSpectrum.Compute left on a large matrix, and the first
        // epoch StartFirstEpoch may have begun on it.
        var cached = m.TakeFactorization();
        if (keep == m.Rows) { cached?.Release(); return Enumerable.Range(0, m.Rows).ToArray(); }
        var first = cached?.FirstEpoch;
        if (first is not null && !SameSettings(first.Options))
        {
            cached!.Release(); // started by other settings: start over from the rows
            cached = null;
            first = null;
        }
        var g0 = cached?.Gram ?? new LowerGram(GramMatrix.OfRows(m, parallel: true), m.Rows, GramMatrix.UsesSingle(m));
        var alive = Enumerable.Range(0, m.Rows).ToArray();
        var reduced = cached?.Reduced;
        while (alive.Length > keep)
        {
            int n = alive.Length;
            int budget = Math.Min(n - keep, Math.Max(1, (int)Math.Ceiling(BatchFraction * n)));
            if (m.Rows > DiffuseMinRows && n - keep - budget <= DiffuseTail * budget) budget = n - keep;
            GemEpoch? epoch;
            if (first is not null)
            {
                IdleCores.Waiting(() => first.Work.Wait());
                epoch = first.Work.Result;
                first = null;
            }
            else
            {
                // A later epoch of a wide group allocates its n² copy and Q (VGG-16's fc2: 2 × 72 MiB) where the earlier
                // epoch's Q and removals, now garbage, would otherwise not yet be free (its plan peak rose 110-140 MiB here).
                if (m.Rows > DiffuseMinRows && epochs > 0) GC.Collect();
                epoch = GemEpoch.Factorise(this, g0, alive, reduced);
            }
            epochs++;
            reduced = null;
            if (epoch is null) { alive = alive[..(n - budget)]; continue; } // all rows zero: every loss is 0
            // Every removal so far, in order: a started epoch may have gone past this budget (or stopped short of it).
            var run = epoch.Run(budget);
            var removed = run.Take(Math.Min(budget, run.Count)).ToArray();
            epoch.Release();
            var isRemoved = new bool[n];
            foreach (var j in removed) isRemoved[j] = true;
            var next = new int[n - removed.Length];
            for (int a = 0, k = 0; a < n; a++) if (!isRemoved[a]) next[k++] = alive[a];
            alive = next;
        }
        // A float32-product Gram stays with the matrix for the group's data-free fold (see KeptGram); others go back.
        if (g0.SingleProducts) m.KeepGram(new KeptGram(g0, m));
        else g0.Release();
        Array.Sort(alive);
        return alive;
    }

    /// <summary>
    /// Starts GEM's first epoch on <paramref name="m"/>'s cached factorisation on a thread of its own, before the keep
    /// count is known: the factorisation, every row's loss and the first ⌈BatchFraction·rows⌉ removals do not depend
    /// on it (a later <see cref="Select(FilterMatrix, int)"/> by the same settings takes the removals its budget
    /// allows, or continues them; the result is the same bits as without this). Why: on VGG-16 the first classifier
    /// group's spectrum is the plan's longest step, and the second's first epoch (mostly one-at-a-time removals,
    /// one core) can run beside it instead of after it. <see cref="FilterMatrix.ReleaseCache"/> stops it.
    /// Does nothing without a cached factorisation or reduction.
    /// </summary>
    internal void StartFirstEpoch(FilterMatrix m)
    {
        var f = m.PeekFactorization();
        // Without a kept reduction (eigenvalues-only spectrum) the epoch would start with a whole reduction: not speculatively.
        if (f?.Reduced is null || f.FirstEpoch is not null || m.Rows < 2) return;
        int n = m.Rows;
        int budget = Math.Min(n - 1, Math.Max(1, (int)Math.Ceiling(BatchFraction * n)));
        var cancel = new CancellationTokenSource();
        var all = Enumerable.Range(0, n).ToArray();
        var work = Task.Factory.StartNew(() =>
        {
            GemEpoch? epoch = null;
            IdleCores.Occupy(() =>
            {
                epoch = GemEpoch.Factorise(this, f.Gram, all, f.Reduced, cancel.Token);
                epoch?.Run(budget, cancel.Token);
            });
            return epoch;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        f.FirstEpoch = new PreparedEpoch(this, budget, cancel, work);
    }

    private bool SameSettings(GemSelector o) => o == this || (o.BatchFraction == BatchFraction && o.ConflictThreshold == ConflictThreshold &&
        o.MaxConflicts == MaxConflicts && o.MaxUnexplained == MaxUnexplained && o.DiffuseMinRows == DiffuseMinRows && o.DiffuseTail == DiffuseTail);

    /// <summary>
    /// Test hook: the loss of removing row <paramref name="j"/> from the whole matrix after the rows in
    /// <paramref name="removedFirst"/> (empty: the plain leave-one-out loss), as an epoch computes it.
    /// </summary>
    internal static double QuadratureLoss(FilterMatrix m, int j, int[] removedFirst)
    {
        var g0 = new LowerGram(GramMatrix.OfRows(m, parallel: false), m.Rows, GramMatrix.UsesSingle(m));
        var epoch = GemEpoch.Factorise(new GemSelector(), g0, Enumerable.Range(0, m.Rows).ToArray(), null);
        if (epoch is null) return 0;
        var d = removedFirst.OrderBy(x => x).ToArray();
        return d.Length == 0 ? epoch.StaleLoss(j) : epoch.LocalLoss(j, d);
    }
}
