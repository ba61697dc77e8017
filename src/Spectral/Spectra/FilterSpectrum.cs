using System.Collections.Concurrent;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>Singular values of one group's filter matrix, descending, in float64.</summary>
public sealed class FilterSpectrum
{
    private const int CacheMinRows = 256; // below this, recomputing is cheaper than holding 2·n² doubles

    private const double MachineEpsilon = 2.220446049250313e-16; // 2⁻⁵² (double.Epsilon is the smallest subnormal)

    private FilterSpectrum(int width, int cols, double[] singularValues)
    {
        Width = width;
        Cols = cols;
        SingularValues = singularValues;
        double sum = 0;
        foreach (var s in singularValues) sum += s;
        NuclearNorm = sum;
    }

    /// <summary>σ₁ ≥ σ₂ ≥ … ≥ 0, length min(Width, Cols).</summary>
    public double[] SingularValues { get; }

    /// <summary>Number of filters (rows).</summary>
    public int Width { get; }

    /// <summary>Length of one filter (columns).</summary>
    public int Cols { get; }

    /// <summary>
    /// Cols &lt; Width: at most Cols singular values can be non-zero, so the zero tail is structural
    /// (an expanding layer), not redundancy.
    /// </summary>
    public bool IsRankCapped => Cols < Width;

    /// <summary>min(Width, Cols): the number of singular values that can be non-zero.</summary>
    public int StructuralRank => SingularValues.Length;

    public double Sigma1 => SingularValues.Length > 0 ? SingularValues[0] : 0;

    public double NuclearNorm { get; }

    /// <summary>True when every filter is zero (a dead group): σ/σ₁ is then defined as 0.</summary>
    public bool IsZero => !(Sigma1 > 0);

    /// <summary>σᵢ/σ₁ (0 for a dead group).</summary>
    public double Normalized(int i) => IsZero ? 0 : SingularValues[i] / Sigma1;

    /// <summary>#{i : σᵢ/σ₁ ≥ threshold}, over the structural (min(rows, cols)) spectrum.</summary>
    public int CountAtOrAbove(double threshold)
    {
        if (IsZero) return threshold <= 0 ? SingularValues.Length : 0;
        double cut = threshold * Sigma1;
        int lo = 0, hi = SingularValues.Length; // first index with σ < cut (σ descending)
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (SingularValues[mid] >= cut) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>Smallest k whose top-k sum reaches <paramref name="fraction"/> of the nuclear norm (0 for a dead group).</summary>
    public int EffectiveRank(double fraction)
    {
        if (!(fraction > 0 && fraction <= 1))
            throw new ArgumentException($"fraction must be in (0, 1], got {fraction}", nameof(fraction));
        if (IsZero) return 0;
        double target = fraction * NuclearNorm, acc = 0;
        for (int k = 0; k < SingularValues.Length; k++)
        {
            acc += SingularValues[k];
            // relative slack: fraction 1 must not fail on the last rounding bit
            if (acc >= target * (1 - 1e-12)) return k + 1;
        }
        return SingularValues.Length;
    }

    /// <summary>Wraps singular values computed elsewhere (sorted descending here; negatives rejected).</summary>
    public static FilterSpectrum FromSingularValues(int width, int cols, ReadOnlySpan<double> singularValues)
    {
        if (width < 1) throw new ArgumentException($"width must be at least 1, got {width}", nameof(width));
        if (cols < 1) throw new ArgumentException($"cols must be at least 1, got {cols}", nameof(cols));
        int r = Math.Min(width, cols);
        if (singularValues.Length != r)
            throw new ArgumentException($"expected min(width, cols) = {r} singular values, got {singularValues.Length}", nameof(singularValues));
        var sv = singularValues.ToArray();
        for (int i = 0; i < sv.Length; i++)
            if (!(sv[i] >= 0) || double.IsInfinity(sv[i]))
                throw new ArgumentException($"singular value [{i}] = {sv[i]} must be finite and non-negative", nameof(singularValues));
        Array.Sort(sv);
        Array.Reverse(sv);
        return new FilterSpectrum(width, cols, sv);
    }

    /// <summary>
    /// Singular values from the Gram matrix on the smaller side (A·Aᵀ or Aᵀ·A), reduced to tridiagonal
    /// form and solved with implicit QL; σ = √max(λ, 0). For a matrix with 256 ≤ rows ≤ cols the Gram
    /// and its reduction stay cached on <paramref name="m"/> until <see cref="GemSelector"/> consumes
    /// them (or <see cref="FilterMatrix.ReleaseCache"/>): rows² doubles.
    /// </summary>
    public static FilterSpectrum Compute(FilterMatrix m) => Compute(m, parallel: true);

    internal static FilterSpectrum Compute(FilterMatrix m, bool parallel)
    {
        ArgumentNullException.ThrowIfNull(m);
        int r = Math.Min(m.Rows, m.Cols);
        double[] lambda;
        if (m.Rows <= m.Cols && m.Rows >= CacheMinRows)
        {
            // GEM needs this very Gram and reduction: keep both on the matrix for it, in one buffer
            // (the reduction overwrites only the upper triangle; G stays readable from the lower one).
            bool single = GramMatrix.UsesSingle(m);
            var gram = GramMatrix.OfRows(m, parallel);
            var lower = new LowerGram(gram, r, single);
            if (EigenvaluesOnly(m, single))
            {
                // No reduction is kept: GEM, if it selects here, reduces the kept Gram itself (the same bits as this reduction's).
                lambda = BandReduction.Eigenvalues(gram, r, parallel);
                m.KeepFactorization(new GramFactorization(lower, null));
            }
            else
            {
                var reduced = SymmetricTridiagonal.Reduce(gram, r, parallel, single);
                m.KeepFactorization(new GramFactorization(lower, reduced));
                lambda = reduced.Eigenvalues();
            }
        }
        else
        {
            var gram = GramMatrix.SmallerSide(m, parallel);
            lambda = SymmetricTridiagonal.Reduce(gram, r, parallel).Eigenvalues();
            WorkArrays.Return(gram);
        }
        var sv = new double[r];
        for (int i = 0; i < r; i++) sv[i] = Math.Sqrt(Math.Max(lambda[i], 0));
        // Forming the Gram and reducing it perturb eigenvalues by ~max(rows, cols)·ε·λ₁, so singular
        // values below √(max(rows, cols)·ε)·σ₁ are rounding noise of this method: report them as 0
        // (a rank-deficient matrix then shows an exact zero tail instead of a 1e−7 fuzz).
        double floor = sv.Length > 0 ? sv[0] * Math.Sqrt(Math.Max(m.Rows, m.Cols) * MachineEpsilon) : 0;
        for (int i = 0; i < r; i++) if (sv[i] < floor) sv[i] = 0;
        return new FilterSpectrum(m.Rows, m.Cols, sv);
    }

    /// <summary>
    /// Whether <paramref name="m"/>'s spectrum takes the two-stage eigenvalues-only reduction (<see cref="BandReduction"/>):
    /// a float32-product Gram of at least <see cref="BandMinRows"/> rows whose rows are at least four times shorter than
    /// its columns (VGG-16's first classifier group, 4096×25088). Why those: the two-stage path costs ~2.2 CPU s against
    /// ~3.6 at n = 4096, but keeps no reflectors, so GEM would have to reduce the Gram again (and no first epoch starts on
    /// it beside the spectra). Such a Gram is the plan's costliest (rows²·cols), so its spectrum ends last and a first
    /// epoch started after it would overlap nothing; a square group of the same width (VGG-16's fc2, which GEM prunes)
    /// keeps the one-stage reduction its first epoch starts from.
    /// </summary>
    internal static bool EigenvaluesOnly(FilterMatrix m, bool single) =>
        single && m.Rows >= BandMinRows && m.Rows <= m.Cols && m.Cols >= 4L * m.Rows;

    private const int BandMinRows = 2048;

    /// <summary>Spectra of many groups in parallel (largest first, so the big ones do not finish last).</summary>
    public static FilterSpectrum[] ComputeAll(IReadOnlyList<FilterMatrix> matrices)
    {
        ArgumentNullException.ThrowIfNull(matrices);
        return ComputeAll(matrices.Count, i => matrices[i] ?? throw new ArgumentException($"matrices[{i}] is null", nameof(matrices)),
            i => matrices[i] is { } m ? GramMatrix.Cost(m) : 0).Spectra;
    }

    /// <summary>
    /// Builds <paramref name="count"/> matrices and their spectra in parallel, each matrix on the worker that
    /// then analyses it, in decreasing <paramref name="expectedCost"/>: the widest group's spectrum (the
    /// longest chain of the plan) starts as soon as its own matrix exists instead of after every matrix.
    /// </summary>
    public static (FilterMatrix[] Matrices, FilterSpectrum[] Spectra) ComputeAll(int count, Func<int, FilterMatrix> build, Func<int, double> expectedCost) =>
        ComputeAll(count, build, expectedCost, null);

    /// <summary>As above; <paramref name="gemFor"/>: the GEM settings that will select in group i (null: none), so a group wider
    /// than their <see cref="GemSelector.DiffuseMinRows"/> starts its first epoch as soon as its spectrum is known
    /// (<see cref="GemSelector.StartFirstEpoch"/>; the selection is the same bits either way).</summary>
    public static (FilterMatrix[] Matrices, FilterSpectrum[] Spectra) ComputeAll(int count, Func<int, FilterMatrix> build, Func<int, double> expectedCost,
        Func<int, GemSelector?>? gemFor)
    {
        ArgumentNullException.ThrowIfNull(build);
        ArgumentNullException.ThrowIfNull(expectedCost);
        var matrices = new FilterMatrix[count];
        var spectra = new FilterSpectrum[count];
        var order = Enumerable.Range(0, count).OrderByDescending(expectedCost).ToArray();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            Parallel.ForEach(Partitioner.Create(order, EnumerablePartitionerOptions.NoBuffering),
                i => IdleCores.Occupy(() =>
                {
                    double t0 = clock.Elapsed.TotalMilliseconds;
                    spectra[i] = Compute(matrices[i] = build(i));
                    if (matrices[i].Rows >= 1024) GemEpoch.Trace?.Invoke($"[{DateTime.Now:HH:mm:ss.fff}] spectrum {matrices[i].Rows}×{matrices[i].Cols}: {t0:F0}–{clock.Elapsed.TotalMilliseconds:F0} ms{(EigenvaluesOnly(matrices[i], GramMatrix.UsesSingle(matrices[i])) ? " (eigenvalues only)" : "")}");
                    if (gemFor?.Invoke(i) is { } gem && matrices[i].Rows > gem.DiffuseMinRows) gem.StartFirstEpoch(matrices[i]);
                }));
        }
        catch
        {
            foreach (var m in matrices) m?.ReleaseCache(); // stops the GEM epochs started so far
            throw;
        }
        return (matrices, spectra);
    }
}
