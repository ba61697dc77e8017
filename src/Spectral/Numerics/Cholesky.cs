using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// Cholesky factorisation and solves for dense symmetric positive definite systems (row-major, float64).
/// Blocked: each panel of <see cref="Block"/> columns has its diagonal block factored with dot products; the rows
/// below it and everything they change further on are matrix products through <see cref="PackedGemm{T}"/>'s tiles
/// (compute-bound, where a row-by-row update is memory-bound: ~10× faster for the few-thousand-wide systems of a
/// layer re-fit).
/// </summary>
public static unsafe class Cholesky
{
    private const int Block = 96;

    /// <summary>
    /// Overwrites the lower triangle of <paramref name="a"/> (n×n) with L, a = L·Lᵀ; false when a is not
    /// positive definite. The upper triangle is left as it was, except that entries of it may be overwritten.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool Factor(double[] a, int n)
    {
        if (a.Length < (long)n * n) throw new ArgumentException($"matrix holds {a.Length} values, {n}×{n} needs {(long)n * n}");
        // The first panel's rows (the largest), packed in both sliver layouts of the GEMM's tiles.
        int most = Math.Max(0, n - Block);
        var packA = new double[(long)RoundUp(most, PackedGemm<double>.MR) * Block];
        var packB = new double[(long)RoundUp(Math.Max(most, Block), PackedGemm<double>.NR) * Block];
        var inverse = new double[Block * Block];
        for (int k0 = 0; k0 < n; k0 += Block)
        {
            int k1 = Math.Min(n, k0 + Block), kb = k1 - k0;
            // The diagonal block (already updated for every earlier panel), row-oriented within the block.
            for (int i = k0; i < k1; i++)
                for (int j = k0; j <= i; j++)
                {
                    double s = a[i * n + j] - TensorPrimitives.Dot(new ReadOnlySpan<double>(a, i * n + k0, j - k0), new ReadOnlySpan<double>(a, j * n + k0, j - k0));
                    if (i == j)
                    {
                        if (!(s > 0) || !double.IsFinite(s)) return false;
                        a[i * n + i] = Math.Sqrt(s);
                    }
                    else a[i * n + j] = s / a[j * n + j];
                }
            if (k1 == n) break;
            // The panel below it, X·L₁₁ᵀ = A: X = A·L₁₁⁻ᵀ, one product through the GEMM's tiles against the block's inverse
            // (as blocked triangular solves invert their diagonal blocks), not a dot product per entry: those were a third of
            // the factorisation of a 4,000-wide system (2–3 GFMA per CPU s against the tiles' 20–25). The rows, packed, are
            // their own copy, so the product is written over them.
            InvertLower(a, n, k0, kb, inverse);
            int rest = n - k1, blocks = (rest + Block - 1) / Block;
            fixed (double* pi = inverse, wb = packB) PackedGemm<double>.PackB(pi, kb, true, 0, 0, kb, kb, wb);
            ParallelFor(blocks, (long)rest * kb * kb, b =>
            {
                int i0 = k1 + b * Block, rows = Math.Min(Block, n - i0);
                fixed (double* pa = a, wa = packA, wb = packB)
                {
                    double* own = wa + (long)(i0 - k1) * kb;
                    PackedGemm<double>.PackA(pa + k0, n, false, i0, 0, rows, kb, own);
                    for (int i = i0; i < i0 + rows; i++) new Span<double>(pa + (long)i * n + k0, kb).Clear();
                    PackedGemm<double>.Macro(rows, kb, kb, 1.0, own, wb, pa + (long)i0 * n + k0, n);
                }
            });
            // The trailing lower triangle loses panel · panelᵀ, one block row at a time (columns up to its diagonal). The
            // panel is packed once for every block row (as Gemm.GramOfRows packs its rows), not once per block row as
            // separate products would: the same tiles and sums, a fifth less work on a 4,000-wide system.
            fixed (double* pa = a, wa = packA, wb = packB)
            {
                PackedGemm<double>.PackA(pa + k0, n, false, k1, 0, rest, kb, wa);
                PackedGemm<double>.PackB(pa + k0, n, true, 0, k1, kb, rest, wb);
            }
            ParallelFor(blocks, (long)rest * rest * kb / 2, b =>
            {
                int i0 = k1 + b * Block, rows = Math.Min(Block, n - i0);
                fixed (double* pa = a, wa = packA, wb = packB)
                    PackedGemm<double>.Macro(rows, i0 + rows - k1, kb, -1.0, wa + (long)(i0 - k1) * kb, wb, pa + (long)i0 * n + k1, n);
            });
        }
        return true;
    }

    /// <summary>Solves L·Lᵀ·X = B in place for the m right-hand sides in the n×m row-major <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Solve(double[] l, int n, double[] b, int m)
    {
        if (b.Length < (long)n * m) throw new ArgumentException($"right-hand side holds {b.Length} values, {n}×{m} needs {(long)n * m}");
        if (n == 0 || m == 0) return;
        // Columns of B are independent systems: split them over the cores when there is enough work.
        int parts = m >= 64 && (long)n * n * m >= 1L << 22 && IdleCores.Any ? Environment.ProcessorCount : 1;
        Parallel.For(0, parts, part =>
        {
            int c0 = m * part / parts, c1 = m * (part + 1) / parts;
            SolveColumns(l, n, b, m, c0, c1 - c0);
        });
    }

    /// <summary>Forward then backward substitution on columns [c0, c0 + width) of B, a block of rows at a time.</summary>
    private static void SolveColumns(double[] l, int n, double[] b, int m, int c0, int width)
    {
        // L·Y = B: each block of rows first loses L[block, before]·Y[before] (one product), then is solved in place.
        for (int i0 = 0; i0 < n; i0 += Block)
        {
            int i1 = Math.Min(n, i0 + Block);
            if (i0 > 0) Gemm.Multiply(i1 - i0, width, i0, -1.0, l.AsSpan(i0 * n), n, false, b.AsSpan(c0), m, false, b.AsSpan(i0 * m + c0), m);
            for (int i = i0; i < i1; i++)
            {
                var row = b.AsSpan(i * m + c0, width);
                for (int j = i0; j < i; j++)
                {
                    double f = l[i * n + j];
                    if (f != 0) TensorPrimitives.MultiplyAdd(b.AsSpan(j * m + c0, width), -f, row, row);
                }
                TensorPrimitives.Multiply(row, 1 / l[i * n + i], row);
            }
        }
        // Lᵀ·X = Y from the last block up: a block loses L[after, block]ᵀ·X[after], then is solved in place.
        for (int i1 = n; i1 > 0; i1 -= Block)
        {
            int i0 = Math.Max(0, i1 - Block);
            if (i1 < n) Gemm.Multiply(i1 - i0, width, n - i1, -1.0, l.AsSpan(i1 * n + i0), n, true, b.AsSpan(i1 * m + c0), m, false, b.AsSpan(i0 * m + c0), m);
            for (int i = i1 - 1; i >= i0; i--)
            {
                var row = b.AsSpan(i * m + c0, width);
                for (int j = i + 1; j < i1; j++)
                {
                    double f = l[j * n + i];
                    if (f != 0) TensorPrimitives.MultiplyAdd(b.AsSpan(j * m + c0, width), -f, row, row);
                }
                TensorPrimitives.Multiply(row, 1 / l[i * n + i], row);
            }
        }
    }

    /// <summary>The inverse of a symmetric positive definite matrix (n×n, row-major, symmetric), or null when it is not positive definite.</summary>
    public static double[]? Invert(ReadOnlySpan<double> a, int n)
    {
        var l = a[..(n * n)].ToArray();
        if (!Factor(l, n)) return null;
        var inverse = new double[n * n];
        for (int i = 0; i < n; i++) inverse[i * n + i] = 1;
        Solve(l, n, inverse, n);
        // Rounding leaves the two triangles a few ulps apart; callers index both.
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) inverse[j * n + i] = inverse[i * n + j] = 0.5 * (inverse[i * n + j] + inverse[j * n + i]);
        return inverse;
    }

    /// <summary>
    /// The inverse of the kb×kb lower-triangular block of <paramref name="a"/> at (k0, k0) into <paramref name="inverse"/>
    /// (kb×kb row-major, zero above the diagonal): row i of L⁻¹ is (eᵢ − Σ_{k&lt;i} L[i,k]·row k of L⁻¹) / L[i,i].
    /// </summary>
    private static void InvertLower(double[] a, int n, int k0, int kb, double[] inverse)
    {
        Array.Clear(inverse, 0, kb * kb);
        for (int i = 0; i < kb; i++)
        {
            var row = inverse.AsSpan(i * kb, i);
            for (int k = 0; k < i; k++)
            {
                double f = a[(k0 + i) * n + k0 + k];
                if (f != 0) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<double>(inverse, k * kb, i), -f, row, row);
            }
            double d = 1 / a[(k0 + i) * n + k0 + i];
            TensorPrimitives.Multiply(row, d, row);
            inverse[i * kb + i] = d;
        }
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>Parallel over <paramref name="count"/> independent pieces when the work is worth it and a core is idle.</summary>
    private static void ParallelFor(int count, long work, Action<int> body)
    {
        if (count > 1 && work >= 1L << 20 && IdleCores.Any) Parallel.For(0, count, body);
        else for (int i = 0; i < count; i++) body(i);
    }
}
