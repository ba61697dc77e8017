using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// One GEM epoch: a factorisation G = Q·T·Qᵀ of the alive rows' Gram, every row's exact leave-one-out
/// loss from it, then lazy one-at-a-time removals (see <see cref="GemSelector"/>).
/// </summary>
internal sealed class GemEpoch
{
    private const int A = ResolventQuadrature.ScreenA, B = ResolventQuadrature.ScreenB, L = ResolventQuadrature.Lanes;

    private readonly GemSelector _opt;
    private readonly ResolventQuadrature _rq;
    private readonly LowerGram _g0;
    private readonly int[] _alive;
    private readonly int _n;
    private readonly double[] _m1, _m2, _loss, _rA, _rB;
    private readonly ResolventQuadrature.Scratch _sc, _sc2;
    private readonly Dictionary<(int, int), double[]> _pairs = new();

    internal static Action<string>? Trace;

    private GemEpoch(GemSelector opt, ResolventQuadrature rq, LowerGram g0, int[] alive,
        double[] m1, double[] m2, double[] loss, double[] rA, double[] rB)
    {
        _opt = opt; _rq = rq; _g0 = g0; _alive = alive; _n = alive.Length;
        _m1 = m1; _m2 = m2; _loss = loss; _rA = rA; _rB = rB;
        _sc = new ResolventQuadrature.Scratch(_n);
        _sc2 = new ResolventQuadrature.Scratch(_n);
    }

    /// <summary>
    /// Factorises the alive rows' Gram (principal submatrix of <paramref name="g0"/>, rows ascending) and
    /// computes all exact leave-one-out losses; null when every row is zero. <paramref name="reduced"/>:
    /// the tridiagonal form of exactly this submatrix when already known (the spectrum computed it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static GemEpoch? Factorise(GemSelector opt, LowerGram g0, int[] alive, SymmetricTridiagonal? reduced) =>
        Factorise(opt, g0, alive, reduced, default);

    /// <summary>As above; also null when <paramref name="cancel"/> is set before Q is formed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static GemEpoch? Factorise(GemSelector opt, LowerGram g0, int[] alive, SymmetricTridiagonal? reduced, CancellationToken cancel)
    {
        int n = alive.Length;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var m1 = new double[n];
        var m2 = new double[n];
        bool par = n >= 256;
        double[]? g = reduced is null ? WorkArrays.Rent(n * n) : null; // the reduction reads its upper triangle only
        g0.CopyPrincipal(alive, g, m1, m2);
        double tCopy = clock.Elapsed.TotalMilliseconds;
        var tri = reduced ?? SymmetricTridiagonal.Reduce(g!, n, par, g0.SingleProducts);
        double tReduce = clock.Elapsed.TotalMilliseconds;
        double lmax = TridiagonalEigen.LargestEigenvalue(tri.Diagonal, tri.OffDiagonal);
        if (!(lmax > 0)) { WorkArrays.Return(g); return null; }
        var q = tri.FormQ(par, cancel, g0.SingleProducts);
        WorkArrays.Return(g); // its reflectors are in Q now
        if (q is null) return null;
        double tQ = clock.Elapsed.TotalMilliseconds;
        var rq = new ResolventQuadrature(tri, q, lmax);

        var loss = new double[n];
        var rA = new double[n];
        var rB = new double[n];
        void Stale(int j, ResolventQuadrature.Scratch sc)
        {
            rq.Solve(rq.QRow(j), sc, keepY: false);
            rq.Phi(sc.Qy, sc.Yy, sc.Phi);
            loss[j] = rq.Integrate(sc.Phi, m1[j], m2[j]);
            rA[j] = sc.Qy[A];
            rB[j] = sc.Qy[B];
        }
        if (par && IdleCores.Any)
            Parallel.For(0, n, () => new ResolventQuadrature.Scratch(n), (j, _, sc) => { Stale(j, sc); return sc; }, _ => { });
        else
        {
            var sc0 = new ResolventQuadrature.Scratch(n);
            for (int j = 0; j < n; j++) Stale(j, sc0);
        }
        Trace?.Invoke($"[{DateTime.Now:HH:mm:ss.fff}] factorise n={n}: copy {tCopy:F0} reduce {tReduce - tCopy:F0}{(reduced is null ? "" : " (reused)")} formQ {tQ - tReduce:F0} losses {clock.Elapsed.TotalMilliseconds - tQ:F0} ms");
        return new GemEpoch(opt, rq, g0, alive, m1, m2, loss, rA, rB);
    }

    public double StaleLoss(int j) => _loss[j];

    /// <summary>Hands the factorisation's Q back to <see cref="WorkArrays"/>: the epoch is not used afterwards.</summary>
    public void Release() => _rq.Release();

    // The lazy phase's state, kept between Run calls: a run continued to a larger budget removes exactly the rows one
    // run to that budget would (the order of removals does not depend on the budget, only where it ends).
    private sealed class Lazy
    {
        public Lazy(int n, double[] loss)
        {
            Version = new int[n]; IsRemoved = new bool[n]; Screened = new int[n];
            Contributors = new List<(double Share, int K)>?[n]; Evaluated = new int[n][];
            LocalA = new double[n]; LocalB = new double[n]; FullA = new double[n]; FullB = new double[n];
            WA = new WhitenedRemovals(n); WB = new WhitenedRemovals(n);
            Qf = new float[ScreenBatch][]; SqA = new double[ScreenBatch][]; SqB = new double[ScreenBatch][];
            for (int b = 0; b < ScreenBatch; b++) { Qf[b] = new float[n]; SqA[b] = new double[n]; SqB[b] = new double[n]; }
            Va = new double[n]; Vb = new double[n];
            Queue = new PriorityQueue<(int J, int Ver), (double Loss, int J)>(n);
            for (int j = 0; j < n; j++) { Queue.Enqueue((j, 0), (loss[j], j)); Evaluated[j] = []; }
        }
        public readonly int[] Version, Screened;
        public readonly bool[] IsRemoved;
        public readonly List<(double Share, int K)>?[] Contributors;
        public readonly int[][] Evaluated;
        public readonly double[] LocalA, LocalB, FullA, FullB, Va, Vb;
        public readonly double[][] SqA, SqB;
        public readonly WhitenedRemovals WA, WB;
        public readonly float[][] Qf;
        public readonly PriorityQueue<(int J, int Ver), (double Loss, int J)> Queue;
        public readonly List<int> Removed = [];
        public string? Stop; // why the epoch ended before its budget (then no later call removes more)
        public int Evals;
    }

    private Lazy? _lazy;

    /// <summary>
    /// Removes rows (local indices), one at a time, until <paramref name="budget"/> are removed in all (this call and
    /// earlier ones) or the epoch stops early; returns every removal so far, in order. <paramref name="cancel"/>: stop
    /// where it is (the result is then unusable).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public IReadOnlyList<int> Run(int budget, CancellationToken cancel = default)
    {
        int n = _n;
        var st = _lazy ??= new Lazy(n, _loss);
        if (st.Stop is not null) return st.Removed;
        var version = st.Version;
        var isRemoved = st.IsRemoved;
        var screened = st.Screened;
        var contributors = st.Contributors;
        var evaluated = st.Evaluated;
        var localA = st.LocalA;  // share of R_jj (t = 0.01σ₁) explained by the removals the value includes
        var localB = st.LocalB;  // … at t = 0.1σ₁
        var fullA = st.FullA;    // … explained by ALL removals so far (Σ whitened coefficients²)
        var fullB = st.FullB;
        var removed = st.Removed;
        var wA = st.WA;
        var wB = st.WB;
        var pq = st.Queue;
        double share2 = _opt.ConflictThreshold * _opt.ConflictThreshold;
        string stop = "budget";
        int evals = st.Evals;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var va = st.Va;
        var vb = st.Vb;

        while (removed.Count < budget)
        {
            if (cancel.IsCancellationRequested) return removed;
            if (pq.Count == 0) { stop = st.Stop = "empty"; break; }
            var (j, ver) = pq.Dequeue();
            if (isRemoved[j] || ver != version[j]) continue;
            var qj = _rq.QRow(j);
            if (screened[j] < removed.Count) Screen(st, j, share2);
            var set = Top(contributors[j], _opt.MaxConflicts);
            if (!set.AsSpan().SequenceEqual(evaluated[j]))
            {
                evaluated[j] = set;
                version[j]++;
                evals++;
                pq.Enqueue((j, version[j]), (LocalLoss(j, set, out localA[j], out localB[j]), j));
                continue;
            }
            // Share of R_jj's change that the value did not include: large only when many individually
            // weak removals add up (a big family of near-copies). The value is then not trustworthy:
            // end the epoch and refactorise rather than guess.
            double gap = Math.Max(fullA[j] - localA[j], fullB[j] - localB[j]);
            if (gap > _opt.MaxUnexplained && removed.Count > 0 && _g0.N <= _opt.DiffuseMinRows) { stop = st.Stop = $"unexplained {gap:F2}"; break; }
            isRemoved[j] = true;
            removed.Add(j);
            _rq.Solve(qj, _sc, keepY: true);
            for (int i = 0; i < n; i++) { va[i] = _sc.Y[i * L + A]; vb[i] = _sc.Y[i * L + B]; }
            // The next candidates in the queue are screened in the pass this removal's whitening makes over the stored
            // vectors (this one included), while each is in cache: popped next, they need no pass of their own. VGG-16's
            // fc2, first epoch on one thread: screening 2.2–2.5 + whitening 1.3–1.4 CPU s → 0.02 + 2.0 (same removals).
            var ahead = new List<((int J, int Ver) Entry, (double Loss, int J) Priority)>();
            var next = removed.Count < budget ? TakeAhead(st, [], ahead) : [];
            var starts = Starts(st, next);
            if (BothScales(removed.Count))
            {
                int jj = j;
                Parallel.Invoke(() => wA.Add(_rq.QRow(jj), va, st.Qf, starts, st.SqA), () => wB.Add(_rq.QRow(jj), vb, st.Qf, starts, st.SqB));
            }
            else
            {
                wA.Add(qj, va, st.Qf, starts, st.SqA);
                wB.Add(qj, vb, st.Qf, starts, st.SqB);
            }
            Accumulate(st, next, starts, share2);
            foreach (var (entry, priority) in ahead) pq.Enqueue(entry, priority);
        }
        st.Evals = evals;
        Trace?.Invoke($"[{DateTime.Now:HH:mm:ss.fff}] epoch n={n} budget={budget} removed={removed.Count} stop={stop} evals={evals} lazy {clock.Elapsed.TotalMilliseconds:F0} ms");
        return removed;
    }

    /// <summary>
    /// Screens candidate <paramref name="j"/> against the removals since it was last screened (<see cref="Accumulate"/>),
    /// together with the next valid candidates in the queue, in one pass over the whitened removals; those are put back
    /// with the same priorities. Why: each screening streamed the removals' whitened vectors from memory (VGG-16's fc2:
    /// 2 × 1,024 vectors of 16 KB, ~2,400 screenings in its first epoch, on the plan's longest chain), and the candidate
    /// popped next is most often one of the next few.
    /// </summary>
    private void Screen(Lazy st, int j, double share2)
    {
        var ahead = new List<((int J, int Ver) Entry, (double Loss, int J) Priority)>();
        var batch = TakeAhead(st, [j], ahead);
        var starts = Starts(st, batch);
        if (BothScales(starts.Sum(f => (long)st.Removed.Count - f)))
            Parallel.Invoke(() => st.WA.Coefficients(st.Qf, starts, st.SqA), () => st.WB.Coefficients(st.Qf, starts, st.SqB));
        else
        {
            st.WA.Coefficients(st.Qf, starts, st.SqA);
            st.WB.Coefficients(st.Qf, starts, st.SqB);
        }
        Accumulate(st, batch, starts, share2);
        foreach (var (entry, priority) in ahead) st.Queue.Enqueue(entry, priority);
    }

    /// <summary>Candidates screened in one pass over the whitened removals.</summary>
    private const int ScreenBatch = 8;

    /// <summary>
    /// <paramref name="first"/>, then the next valid candidates in the queue not screened against every removal so far, up to
    /// <see cref="ScreenBatch"/> in all. The valid entries taken off the queue are listed in <paramref name="ahead"/>, for the
    /// caller to put back: the queue then pops in the same order (priorities (loss, j) are distinct among valid entries; the
    /// stale ones dropped here would be skipped when popped). Screening a candidate early changes nothing: its shares are
    /// added one removal at a time, in removal order, whenever they are taken, and read only when it is popped.
    /// </summary>
    private static int[] TakeAhead(Lazy st, int[] first, List<((int J, int Ver) Entry, (double Loss, int J) Priority)> ahead)
    {
        var batch = new List<int>(first);
        while (batch.Count < ScreenBatch && ahead.Count < 2 * ScreenBatch && st.Queue.TryDequeue(out var e, out var priority))
        {
            if (st.IsRemoved[e.J] || e.Ver != st.Version[e.J]) continue;
            ahead.Add((e, priority));
            if (st.Screened[e.J] < st.Removed.Count) batch.Add(e.J);
        }
        return [.. batch];
    }

    /// <summary>The candidates' first removals not yet screened; their rows of Q in float32 into the screening rows.</summary>
    private int[] Starts(Lazy st, int[] batch)
    {
        var starts = new int[batch.Length];
        for (int b = 0; b < batch.Length; b++)
        {
            starts[b] = st.Screened[batch[b]];
            WhitenedRemovals.ToSingle(_rq.QRow(batch[b]), st.Qf[b]);
        }
        return starts;
    }

    /// <summary>
    /// Adds the squared coefficients in the screening rows to each candidate's full shares of R_jj at the two scales, one
    /// removal at a time in removal order; a share of at least <paramref name="share2"/> makes that removal one of its
    /// contributors. Every candidate is then screened against every removal so far.
    /// </summary>
    private void Accumulate(Lazy st, int[] batch, int[] starts, double share2)
    {
        var removed = st.Removed;
        for (int b = 0; b < batch.Length; b++)
        {
            int c = batch[b], f = starts[b];
            double[] sqA = st.SqA[b], sqB = st.SqB[b];
            for (int idx = f; idx < removed.Count; idx++)
            {
                double sa = sqA[idx - f] / _rA[c], sb = sqB[idx - f] / _rB[c];
                st.FullA[c] += sa;
                st.FullB[c] += sb;
                double share = Math.Max(sa, sb);
                if (share >= share2) (st.Contributors[c] ??= []).Add((share, removed[idx]));
            }
            st.Screened[c] = removed.Count;
        }
    }

    // The two scales' whitened removals are independent: on an idle core, large enough batches of their products
    // (≳0.1 ms each) run side by side; the results are the same bits either way.
    private bool BothScales(long vectors) => (long)vectors * _n >= 1 << 18 && IdleCores.Any;

    private static int[] Top(List<(double Share, int K)>? list, int max)
    {
        if (list is null || list.Count == 0) return [];
        IEnumerable<(double Share, int K)> top = list;
        if (list.Count > max) top = list.OrderByDescending(c => c.Share).ThenBy(c => c.K).Take(max);
        var set = top.Select(c => c.K).ToArray();
        Array.Sort(set);
        return set;
    }

    public double LocalLoss(int j, int[] d) => LocalLoss(j, d, out _, out _);

    /// <summary>
    /// Loss of removing j after the rows in d: per node, the Schur complement of R(s) on {j} ∪ d.
    /// rhoA/rhoB: share of R_jj explained by d at the two screening scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public double LocalLoss(int j, int[] d, out double rhoA, out double rhoB)
    {
        int t = d.Length;
        var sc = _sc;
        _rq.Solve(_rq.QRow(j), sc, keepY: true);
        var rjj = sc.Qy.ToArray();
        var r2jj = sc.Yy.ToArray();
        _rq.SolveSecond(sc);
        var rdj = new double[t * L];
        var r2dj = new double[t * L];
        for (int a = 0; a < t; a++)
        {
            _rq.Project(_rq.QRow(d[a]), sc.Y, rdj.AsSpan(a * L, L));
            _rq.Project(_rq.QRow(d[a]), sc.Z, r2dj.AsSpan(a * L, L));
        }
        for (int b = 0; b < t; b++)
        {
            bool missing = false;
            for (int a = 0; a < t && !missing; a++) missing = !_pairs.ContainsKey(Key(d[a], d[b]));
            if (!missing) continue;
            _rq.Solve(_rq.QRow(d[b]), _sc2, keepY: true);
            _rq.SolveSecond(_sc2);
            for (int a = 0; a < t; a++)
            {
                var key = Key(d[a], d[b]);
                if (_pairs.ContainsKey(key)) continue;
                var e = new double[2 * L];
                _rq.Project(_rq.QRow(d[a]), _sc2.Y, e.AsSpan(0, L));
                _rq.Project(_rq.QRow(d[a]), _sc2.Z, e.AsSpan(L, L));
                _pairs[key] = e;
            }
        }
        var c = new double[t * t];
        var c2 = new double[t * t];
        var r = new double[t];
        var r2 = new double[t];
        var x = new double[t];
        var rj = new double[L];
        var r2j = new double[L];
        for (int k = 0; k < L; k++)
        {
            for (int a = 0; a < t; a++)
            {
                r[a] = rdj[a * L + k];
                r2[a] = r2dj[a * L + k];
                for (int b = 0; b < t; b++)
                {
                    var e = _pairs[Key(d[a], d[b])];
                    c[a * t + b] = e[k];
                    c2[a * t + b] = e[L + k];
                }
            }
            SmallCholesky.Solve(c, t, r, x);
            double rx = 0, r2x = 0, xc2x = 0;
            for (int a = 0; a < t; a++)
            {
                rx += r[a] * x[a];
                r2x += r2[a] * x[a];
                double s = 0;
                for (int b = 0; b < t; b++) s += c2[a * t + b] * x[b];
                xc2x += x[a] * s;
            }
            rj[k] = rjj[k] - rx;
            r2j[k] = r2jj[k] - 2 * r2x + xc2x;
        }
        var phi = new double[L];
        _rq.Phi(rj, r2j, phi);
        rhoA = 1 - rj[A] / rjj[A];
        rhoB = 1 - rj[B] / rjj[B];
        // (G²)_jj over the remaining rows, for the high-t tail
        double m2j = _m2[j];
        foreach (var a in d) { double v = _g0[_alive[j], _alive[a]]; m2j -= v * v; }
        return _rq.Integrate(phi, _m1[j], Math.Max(m2j, _m1[j] * _m1[j]));
    }

    private static (int, int) Key(int a, int b) => a <= b ? (a, b) : (b, a);
}
