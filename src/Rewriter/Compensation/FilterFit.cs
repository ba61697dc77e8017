using System.Numerics.Tensors;

namespace OnnxSlim.Rewriter;

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
    private readonly EffectiveFilters _filters;
    private readonly int[] _keep;
    private readonly double[] _keptNorms;
    private readonly int _terms;
    private readonly double _ridge;

    public FilterFit(EffectiveFilters filters, int[] keep, int terms, double ridge)
    {
        _filters = filters;
        _keep = keep;
        _terms = Math.Max(1, Math.Min(terms, keep.Length));
        _ridge = ridge;
        _keptNorms = [.. keep.Select(i => Math.Sqrt(TensorPrimitives.Dot(filters.Row(i), filters.Row(i))))];
    }

    /// <summary>Both fits of row j: with signed coefficients and with non-negative ones (null where nothing matches).</summary>
    public (FilterFold? Signed, FilterFold? NonNegative) Fit(int j)
    {
        var row = _filters.Row(j);
        double norm = Math.Sqrt(TensorPrimitives.Dot(row, row));
        if (norm == 0) return (null, null);
        var dots = new double[_keep.Length];
        var cosines = new double[_keep.Length];
        for (int t = 0; t < _keep.Length; t++)
        {
            dots[t] = TensorPrimitives.Dot(row, _filters.Row(_keep[t]));
            cosines[t] = _keptNorms[t] == 0 ? 0 : dots[t] / (norm * _keptNorms[t]);
        }
        return (Solve(norm, dots, cosines, nonNegative: false), Solve(norm, dots, cosines, nonNegative: true));
    }

    private FilterFold? Solve(double norm, double[] dots, double[] cosines, bool nonNegative)
    {
        // Candidates: best cosine first (ties by kept order, so the choice is deterministic).
        var order = Enumerable.Range(0, _keep.Length)
            .Where(t => _keptNorms[t] > 0 && (nonNegative ? cosines[t] > 0 : cosines[t] != 0))
            .OrderByDescending(t => nonNegative ? cosines[t] : Math.Abs(cosines[t])).ThenBy(t => t)
            .Take(_terms).ToArray();
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
                gram[p * m + q] = gram[q * m + p] = TensorPrimitives.Dot(_filters.Row(_keep[order[p]]), _filters.Row(_keep[order[q]]));
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
