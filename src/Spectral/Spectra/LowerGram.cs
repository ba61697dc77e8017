using System.Runtime.CompilerServices;

namespace OnnxSlim.Spectral;

/// <summary>
/// A row Gram G = A·Aᵀ (n×n) read from the strict lower triangle of its buffer plus a copy of its
/// diagonal. Why: <see cref="Numerics.SymmetricTridiagonal.Reduce"/> works in the upper triangle
/// (diagonal included) only, so the spectrum's reduction and the G that GEM reads afterwards share one
/// n² buffer instead of a copy each (a 2048-wide group: 32 MB, all of it fresh pages).
/// </summary>
internal sealed class LowerGram
{
    private const int Tile = 64;

    private readonly double[] _a;
    private readonly double[] _diagonal;

    /// <summary>Wraps a full symmetric Gram, taking its diagonal now (before a reduction overwrites it).</summary>
    /// <param name="singleProducts">G was built from float32 products (<see cref="GramMatrix.UsesSingle"/>): reductions of
    /// its principal submatrices may then read float32 copies too (<see cref="Numerics.SymmetricTridiagonal.Reduce(double[], int, bool, bool)"/>).</param>
    public LowerGram(double[] full, int n, bool singleProducts = false)
    {
        SingleProducts = singleProducts;
        if (full.Length < (long)n * n) throw new ArgumentException($"Gram buffer has {full.Length} values, need {n}*{n}", nameof(full));
        _a = full;
        N = n;
        _diagonal = new double[n];
        for (int i = 0; i < n; i++) _diagonal[i] = full[(long)i * n + i];
    }

    public int N { get; }

    /// <summary>G was built from float32 products: its reductions may read float32 copies.</summary>
    public bool SingleProducts { get; }

    /// <summary>Hands the buffer back to <see cref="Numerics.WorkArrays"/> (with any reduction stored in it): no use afterwards.</summary>
    public void Release() => Numerics.WorkArrays.Return(_a);

    public double this[int i, int k] => i > k ? _a[(long)i * N + k] : i < k ? _a[(long)k * N + i] : _diagonal[i];

    /// <summary>
    /// The principal submatrix on <paramref name="rows"/> (ascending): its upper triangle into
    /// <paramref name="upper"/> (rows.Length² row-major; null: not wanted), its diagonal into m1 and its
    /// row sums of squares, (G_S²)_aa, into m2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void CopyPrincipal(ReadOnlySpan<int> rows, double[]? upper, Span<double> m1, Span<double> m2)
    {
        int n = rows.Length;
        for (int a = 1; a < n; a++)
            if (rows[a] <= rows[a - 1]) throw new ArgumentException("rows must be strictly ascending", nameof(rows));
        m2.Clear();
        for (int a = 0; a < n; a++)
        {
            double d = _diagonal[rows[a]];
            m1[a] = d;
            m2[a] = d * d;
            if (upper is not null) upper[(long)a * n + a] = d;
        }
        // Tiles of the strict lower triangle: reads run along a source row, the transposed writes stay
        // inside one tile of the destination.
        for (int a0 = 0; a0 < n; a0 += Tile)
            for (int b0 = 0; b0 <= a0; b0 += Tile)
                for (int a = a0; a < Math.Min(a0 + Tile, n); a++)
                {
                    long src = (long)rows[a] * N;
                    double s2 = 0;
                    for (int b = b0, b1 = Math.Min(Math.Min(b0 + Tile, n), a); b < b1; b++)
                    {
                        double v = _a[src + rows[b]];
                        s2 += v * v;
                        m2[b] += v * v;
                        if (upper is not null) upper[(long)b * n + a] = v;
                    }
                    m2[a] += s2;
                }
    }
}
