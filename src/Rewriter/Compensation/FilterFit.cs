using System.Numerics.Tensors;

namespace OnnxSlim.Rewriter;

/// <summary>Which of a removed row's fits a caller reads (see <see cref="FilterFit.FitAll(IReadOnlyList{int}, IReadOnlyList{FitsNeeded}?)"/>).</summary>
[Flags]
internal enum FitsNeeded
{
    None = 0,
    Signed = 1,
    NonNegative = 2,
    Both = Signed | NonNegative,
}

/// <summary>A removed filter approximated by kept ones: w_j ≈ Σ Coefficients[t]·w_{Kept[t]}; Match is the cosine between w_j and the approximation.</summary>
internal sealed record FilterFold(int[] Kept, double[] Coefficients, double Match);

/// <summary>
/// Data-free least squares on effective filters: for a removed row j, the kept rows that best explain it.
/// One term: the kept row with the largest cosine (largest positive one when the coefficients must be
/// non-negative), coefficient ⟨w_j, w_i⟩/‖w_i‖². Several terms: the best-matching rows by cosine, then a
/// ridge-regularised least squares on them (projected coordinate descent when non-negative).
/// </summary>
internal sealed class FilterFit
{
    /// <summary>
    /// From this many multiply-adds of inner products (removed × kept × columns) on, the fit reads them from the
    /// Gram of the group's rows (one panel-blocked product, float32 where <see cref="Spectral.RowGram"/> says so)
    /// instead of one dot product each: VGG-16's classifier groups (1.1·10¹¹ and 1.7·10¹⁰ at --cr 0.5), where each
    /// dot streams two 200 KB rows from memory and the group's stored rows alone took 822 MB. No group of ResNet-50,
    /// MobileNetV2, GoogLeNet, DenseNet-121 or fm_resnet comes near it (ResNet-50's widest: ~3·10⁹), so their folds
    /// are what the dot products give, bit for bit.
    /// </summary>
    public const double GramMinCost = 1e10;

    private readonly EffectiveFilters _filters;
    private readonly int[] _keep;
    private readonly double[] _keptNorms;
    private readonly int _terms;
    private readonly double _ridge;
    // The Gram path: inner products of the rows listed in _gramIndex (channel → position, −1: not listed).
    private readonly double[]? _gram;
    private readonly int[]? _gramIndex;
    private readonly int _gramRows;
    // Or the Gram planning built of all the group's rows, indexed by channel (the same entries as _gram would hold).
    private readonly Spectral.KeptGram? _planned;

    /// <param name="removed">The channels that will be fitted (decides, with the sizes, whether the Gram path is taken).</param>
    /// <param name="gramMinCost">The Gram path's threshold (tests lower it to take the path on small groups).</param>
    /// <param name="planned">The Gram planning built of the group's rows: the Gram path reads it when it would build a float32-product
    /// Gram and the rows are the same bits (<see cref="Spectral.KeptGram"/>), so the fits are the same bits either way.</param>
    public FilterFit(EffectiveFilters filters, int[] keep, int terms, double ridge, int[]? removed = null, double gramMinCost = GramMinCost,
        Spectral.KeptGram? planned = null)
    {
        _filters = filters;
        _keep = keep;
        _terms = Math.Max(1, Math.Min(terms, keep.Length));
        _ridge = ridge;
        if (removed is not null && (double)keep.Length * removed.Length * filters.Cols >= gramMinCost)
        {
            int[] listed = [.. keep, .. removed];
            _gramIndex = Enumerable.Repeat(-1, filters.Width).ToArray();
            for (int p = 0; p < listed.Length; p++) _gramIndex[listed[p]] = p;
            _gramRows = listed.Length;
            if (planned is not null && !planned.Released && planned.Rows == filters.Width && planned.Cols == filters.Cols
                && Spectral.RowGram.UsesSingle(listed.Length, filters.Cols) && planned.SameRows(filters)) _planned = planned;
            else _gram = Spectral.RowGram.Compute(new Listed(filters, listed), listed.Length, filters.Cols);
        }
        // The stored rows first (built on all cores), so that the parallel norms do not queue up behind their building.
        if (!FromGram && keep.Length > 0) _ = filters.Row(keep[0]);
        _keptNorms = new double[keep.Length];
        Parallel.For(0, keep.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) },
            t => _keptNorms[t] = Math.Sqrt(Dot(keep[t], keep[t])));
    }

    /// <summary>Whether the inner products come from the Gram (see <see cref="GramMinCost"/>).</summary>
    public bool FromGram => _gram is not null || _planned is not null;

    /// <summary>Whether the Gram path reads the Gram planning built (see the constructor's <c>planned</c>).</summary>
    public bool FromPlannedGram => _planned is not null;

    /// <summary>⟨w_a, w_b⟩: from the Gram when there is one, else one dot product.</summary>
    private double Dot(int a, int b)
    {
        if (!FromGram) return TensorPrimitives.Dot(_filters.Row(a), _filters.Row(b));
        int pa = _gramIndex![a], pb = _gramIndex[b];
        if (pa < 0 || pb < 0) throw new ArgumentException($"channel {(pa < 0 ? a : b)} was not listed when the fit's Gram was built");
        return _planned is not null ? _planned[a, b] : _gram![(long)pa * _gramRows + pb];
    }

    /// <summary>Both fits of row j: with signed coefficients and with non-negative ones (null where nothing matches).</summary>
    public (FilterFold? Signed, FilterFold? NonNegative) Fit(int j)
    {
        var dots = new double[_keep.Length];
        for (int t = 0; t < _keep.Length; t++) dots[t] = Dot(j, _keep[t]);
        return Fit(j, dots);
    }

    /// <summary>
    /// <see cref="Fit(int)"/> of every row listed, on all cores, bit for bit the same fits. Without the Gram the
    /// inner products are taken a block of rows at a time, each kept row once per block while it is in cache: one
    /// row at a time streamed every kept row from memory per removed row (Faster R-CNN's 2048-wide group: ~1,000
    /// removed × 40 MB of kept rows, memory-bound, ~2 CPU s of its 3.5 s rewrite).
    /// </summary>
    public (FilterFold? Signed, FilterFold? NonNegative)[] FitAll(IReadOnlyList<int> rows) => FitAll(rows, null);

    /// <summary>
    /// <see cref="FitAll(IReadOnlyList{int})"/> of only the fits some reader will read: <paramref name="needed"/>[r] says which of
    /// row r's two fits are wanted (null: both); a fit not wanted is null, and a row with neither takes no inner products.
    /// The fits taken are the same bits. Why: a group read through a ReLU reads only the non-negative fits, and one read
    /// through a broken path none (Faster R-CNN: the signed solves were ~15% of the rewrite).
    /// </summary>
    public (FilterFold? Signed, FilterFold? NonNegative)[] FitAll(IReadOnlyList<int> rows, IReadOnlyList<FitsNeeded>? needed)
    {
        if (needed is not null && needed.Count != rows.Count)
            throw new ArgumentException($"{needed.Count} needs given for {rows.Count} rows", nameof(needed));
        // Rows with nothing wanted are left out before the blocks are cut (a row's fits do not depend on its block).
        int[] at = [.. Enumerable.Range(0, rows.Count).Where(r => needed is null || needed[r] != FitsNeeded.None)];
        var taken = new (FilterFold?, FilterFold?)[at.Length];
        FitBlocks([.. at.Select(r => rows[r])], [.. at.Select(r => needed?[r] ?? FitsNeeded.Both)], taken);
        var fits = new (FilterFold?, FilterFold?)[rows.Count];
        for (int k = 0; k < at.Length; k++) fits[at[k]] = taken[k];
        return fits;
    }

    private void FitBlocks(IReadOnlyList<int> rows, FitsNeeded[] need, (FilterFold?, FilterFold?)[] fits)
    {
        if (rows.Count == 0) return;
        int cores = Math.Max(1, Environment.ProcessorCount);
        int block = Math.Clamp((rows.Count + cores - 1) / cores, 1, RowBlock);
        int blocks = (rows.Count + block - 1) / block;
        Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = cores }, b =>
        {
            int from = b * block, count = Math.Min(block, rows.Count - from);
            var dots = new double[count][];
            for (int r = 0; r < count; r++) dots[r] = new double[_keep.Length];
            int t = 0;
            if (!FromGram && Spectral.Numerics.SameDots.Blocked(_filters.Cols))
            {
                // Four kept rows at a time against each removed row: the same bits as one TensorPrimitives.Dot each.
                Span<double> four = stackalloc double[4];
                for (; t + 4 <= _keep.Length; t += 4)
                {
                    ReadOnlySpan<double> k0 = _filters.Row(_keep[t]), k1 = _filters.Row(_keep[t + 1]),
                        k2 = _filters.Row(_keep[t + 2]), k3 = _filters.Row(_keep[t + 3]);
                    for (int r = 0; r < count; r++)
                    {
                        Spectral.Numerics.SameDots.Four(_filters.Row(rows[from + r]), k0, k1, k2, k3, four);
                        for (int k = 0; k < 4; k++) dots[r][t + k] = four[k];
                    }
                }
            }
            for (; t < _keep.Length; t++)
            {
                if (!FromGram)
                {
                    var kept = _filters.Row(_keep[t]);
                    for (int r = 0; r < count; r++) dots[r][t] = TensorPrimitives.Dot(_filters.Row(rows[from + r]), kept);
                }
                else for (int r = 0; r < count; r++) dots[r][t] = Dot(rows[from + r], _keep[t]);
            }
            for (int r = 0; r < count; r++) fits[from + r] = Fit(rows[from + r], dots[r], need[from + r]);
        });
    }

    /// <summary>Removed rows whose inner products <see cref="FitAll"/> takes together: 16 rows of Faster R-CNN's widest group are 330 KB, within a core's L2.</summary>
    private const int RowBlock = 16;

    /// <summary>The fits of row j given its inner products with the kept rows (dots[t] = ⟨w_j, w_keep[t]⟩).</summary>
    private (FilterFold? Signed, FilterFold? NonNegative) Fit(int j, double[] dots, FitsNeeded need = FitsNeeded.Both)
    {
        double norm = Math.Sqrt(Dot(j, j));
        if (norm == 0) return (null, null);
        var cosines = new double[_keep.Length];
        for (int t = 0; t < _keep.Length; t++) cosines[t] = _keptNorms[t] == 0 ? 0 : dots[t] / (norm * _keptNorms[t]);
        // The two fits mostly pick the same kept rows: their inner products are taken once (per ordered pair, so each
        // is the very dot product the fit would take).
        var products = new Dictionary<(int, int), double>();
        return ((need & FitsNeeded.Signed) != 0 ? Solve(norm, dots, cosines, nonNegative: false, products) : null,
            (need & FitsNeeded.NonNegative) != 0 ? Solve(norm, dots, cosines, nonNegative: true, products) : null);
    }

    /// <summary>Some of a group's rows, in a given order, as a row source.</summary>
    private sealed class Listed(EffectiveFilters filters, int[] rows) : Spectral.IRowSource
    {
        public void Read(int row, int col, Span<double> destination) => filters.Read(rows[row], col, destination);
    }

    private FilterFold? Solve(double norm, double[] dots, double[] cosines, bool nonNegative, Dictionary<(int, int), double> products)
    {
        var order = Candidates(cosines, _keptNorms, _terms, nonNegative);
        if (order.Length == 0) return null;
        if (order.Length == 1)
        {
            int t = order[0];
            return new FilterFold([_keep[t]], [dots[t] / (_keptNorms[t] * _keptNorms[t])], Math.Abs(cosines[t]));
        }
        int m = order.Length;
        var gram = new double[m * m];
        var b = new double[m];
        for (int p = 0; p < m; p++)
        {
            b[p] = dots[order[p]];
            for (int q = 0; q <= p; q++)
            {
                var pair = (_keep[order[p]], _keep[order[q]]);
                if (!products.TryGetValue(pair, out double product)) products[pair] = product = Dot(pair.Item1, pair.Item2);
                gram[p * m + q] = gram[q * m + p] = product;
            }
        }
        double diagonal = 0;
        for (int p = 0; p < m; p++) diagonal += gram[p * m + p];
        double lambda = _ridge * diagonal / m;
        var a = nonNegative ? NonNegative(gram, b, m, lambda) : Ridge(gram, b, m, lambda);
        // Residual ‖w_j − Σ a·w‖² = ‖w_j‖² − 2aᵀb + aᵀGa (unregularised G).
        double residual = norm * norm;
        for (int p = 0; p < m; p++)
        {
            residual -= 2 * a[p] * b[p];
            for (int q = 0; q < m; q++) residual += a[p] * gram[p * m + q] * a[q];
        }
        double match = Math.Sqrt(Math.Clamp(1 - residual / (norm * norm), 0, 1));
        var used = Enumerable.Range(0, m).Where(p => a[p] != 0).ToArray();
        if (used.Length == 0) return null;
        return new FilterFold([.. used.Select(p => _keep[order[p]])], [.. used.Select(p => a[p])], match);
    }

    /// <summary>
    /// The fit's candidates: the <paramref name="terms"/> kept rows (non-zero norm; positive cosine when
    /// <paramref name="nonNegative"/>, else non-zero) of largest cosine (absolute when signed), best first, ties by kept
    /// order so the choice is deterministic. What sorting every candidate and taking the first would give, kept in a
    /// small sorted buffer instead: a sort of ~570 kept rows, twice per removed row, for 8 terms.
    /// </summary>
    internal static int[] Candidates(double[] cosines, double[] keptNorms, int terms, bool nonNegative)
    {
        var best = new int[terms];
        var keys = new double[terms];
        int n = 0;
        for (int t = 0; t < cosines.Length; t++)
        {
            if (!(keptNorms[t] > 0 && (nonNegative ? cosines[t] > 0 : cosines[t] != 0))) continue;
            double key = nonNegative ? cosines[t] : Math.Abs(cosines[t]);
            int p = n; // after every kept candidate whose key is not smaller (equal keys: the earlier row first)
            while (p > 0 && key.CompareTo(keys[p - 1]) > 0) p--;
            if (p >= terms) continue;
            for (int q = Math.Min(n, terms - 1); q > p; q--)
            {
                best[q] = best[q - 1];
                keys[q] = keys[q - 1];
            }
            best[p] = t;
            keys[p] = key;
            if (n < terms) n++;
        }
        return best[..n];
    }

    /// <summary>(G + λI)·a = b by Gaussian elimination with partial pivoting.</summary>
    private static double[] Ridge(double[] gram, double[] b, int m, double lambda)
    {
        var a = new double[m * (m + 1)];
        for (int p = 0; p < m; p++)
        {
            for (int q = 0; q < m; q++) a[p * (m + 1) + q] = gram[p * m + q] + (p == q ? lambda : 0);
            a[p * (m + 1) + m] = b[p];
        }
        for (int col = 0; col < m; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < m; r++) if (Math.Abs(a[r * (m + 1) + col]) > Math.Abs(a[pivot * (m + 1) + col])) pivot = r;
            if (a[pivot * (m + 1) + col] == 0) continue;
            if (pivot != col)
                for (int q = 0; q <= m; q++) (a[col * (m + 1) + q], a[pivot * (m + 1) + q]) = (a[pivot * (m + 1) + q], a[col * (m + 1) + q]);
            for (int r = col + 1; r < m; r++)
            {
                double f = a[r * (m + 1) + col] / a[col * (m + 1) + col];
                for (int q = col; q <= m; q++) a[r * (m + 1) + q] -= f * a[col * (m + 1) + q];
            }
        }
        var x = new double[m];
        for (int r = m - 1; r >= 0; r--)
        {
            double d = a[r * (m + 1) + r];
            if (d == 0) continue;
            double s = a[r * (m + 1) + m];
            for (int q = r + 1; q < m; q++) s -= a[r * (m + 1) + q] * x[q];
            x[r] = s / d;
        }
        return x;
    }

    /// <summary>min ½aᵀ(G + λI)a − bᵀa over a ≥ 0, by cyclic projected coordinate descent.</summary>
    private static double[] NonNegative(double[] gram, double[] b, int m, double lambda)
    {
        var a = new double[m];
        for (int sweep = 0; sweep < 500; sweep++)
        {
            double change = 0, size = 0;
            for (int p = 0; p < m; p++)
            {
                double diagonal = gram[p * m + p] + lambda;
                if (diagonal <= 0) continue;
                double gradient = -b[p] + lambda * a[p];
                for (int q = 0; q < m; q++) gradient += gram[p * m + q] * a[q];
                double next = Math.Max(0, a[p] - gradient / diagonal);
                change = Math.Max(change, Math.Abs(next - a[p]));
                a[p] = next;
                size = Math.Max(size, next);
            }
            if (change <= 1e-12 * Math.Max(size, 1e-300)) break;
        }
        return a;
    }
}
