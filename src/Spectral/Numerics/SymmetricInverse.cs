using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// In-place Gauss–Jordan inverse of a symmetric positive definite matrix (no pivoting needed for SPD).
/// Step k divides row k by its pivot and subtracts f·(row k) from every other row i (f = a_ik, the row's value
/// in column k at that point; rows with f = 0 are left alone). Done one step at a time over the whole matrix, that
/// is n passes over n² values, bound by memory (ResNet-50's 2048-wide inverses: ~1.5 s each). Here the steps go
/// in blocks of <see cref="Block"/>: the block's pivot rows first, step by step among themselves; then each other
/// row takes the block's steps on its columns in the block (giving its f for every step), then on its other
/// columns in one pass, with the block's pivot rows in cache. Every value goes through the same operations in the
/// same order as in the step-at-a-time form, each rounded as <c>TensorPrimitives.MultiplyAdd(pivot, −f, row, row)</c>
/// (a product, then a sum): the same bits.
/// </summary>
internal static class SymmetricInverse
{
    private const int Block = 32;

    public static double[] Invert(double[] a, int n)
    {
        if (a.Length != n * n) throw new ArgumentException($"matrix holds {a.Length} values, {n}×{n} needs {n * n}", nameof(a));
        var pivots = new double[Block * n]; // row s: pivot row k0 + s as its step used it
        var options = new ParallelOptions { MaxDegreeOfParallelism = n >= 256 ? -1 : 1 };
        for (int k0 = 0; k0 < n; k0 += Block)
        {
            int b = Math.Min(Block, n - k0), end = k0 + b;
            for (int s = 0; s < b; s++)
            {
                int k = k0 + s;
                double p = a[k * n + k];
                if (!(p > 0)) throw new ArgumentException($"matrix is not positive definite (pivot {k} = {p})", nameof(a));
                var rowK = new Span<double>(a, k * n, n);
                rowK[k] = 1;
                TensorPrimitives.Divide(rowK, p, rowK);
                rowK.CopyTo(pivots.AsSpan(s * n, n));
                for (int i = k0; i < end; i++)
                    if (i != k) Step(new Span<double>(a, i * n, n), new ReadOnlySpan<double>(pivots, s * n, n), k);
            }
            Parallel.For(0, n, options, () => (Steps: new int[Block], NegF: new double[Block]), (i, _, scratch) =>
            {
                if (i >= k0 && i < end) return scratch;
                var row = new Span<double>(a, i * n, n);
                // The block's columns, step by step: each step's f is the row's value in its column by then.
                int count = 0;
                for (int s = 0; s < b; s++)
                {
                    int k = k0 + s;
                    double f = row[k];
                    if (f == 0) continue;
                    row[k] = 0;
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<double>(pivots, s * n + k0, b), -f, row[k0..end], row[k0..end]);
                    scratch.Steps[count] = s;
                    scratch.NegF[count++] = -f;
                }
                if (count == 0) return scratch;
                // The other columns take the same steps, in order, in one pass.
                Update(row, pivots, n, scratch.Steps.AsSpan(0, count), scratch.NegF.AsSpan(0, count), 0, k0);
                Update(row, pivots, n, scratch.Steps.AsSpan(0, count), scratch.NegF.AsSpan(0, count), end, n);
                return scratch;
            }, _ => { });
        }
        return a;
    }

    /// <summary>One step on one row, as the step-at-a-time form does it.</summary>
    private static void Step(Span<double> row, ReadOnlySpan<double> pivot, int k)
    {
        double f = row[k];
        if (f == 0) return;
        row[k] = 0;
        TensorPrimitives.MultiplyAdd(pivot, -f, row, row);
    }

    /// <summary>row[j] = pivot_s[j]·negF + row[j] for each step (s, negF) in order, for j in [from, to): a product, then a sum, as TensorPrimitives rounds them.</summary>
    private static unsafe void Update(Span<double> row, double[] pivots, int n, ReadOnlySpan<int> steps, ReadOnlySpan<double> negF, int from, int to)
    {
        int j = from, count = steps.Length;
        fixed (double* r = row, pv = pivots)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                for (; j + 32 <= to; j += 32)
                {
                    var v0 = Vector512.Load(r + j);
                    var v1 = Vector512.Load(r + j + 8);
                    var v2 = Vector512.Load(r + j + 16);
                    var v3 = Vector512.Load(r + j + 24);
                    for (int c = 0; c < count; c++)
                    {
                        var f = Vector512.Create(negF[c]);
                        double* p = pv + (long)steps[c] * n + j;
                        v0 = Vector512.Multiply(Vector512.Load(p), f) + v0;
                        v1 = Vector512.Multiply(Vector512.Load(p + 8), f) + v1;
                        v2 = Vector512.Multiply(Vector512.Load(p + 16), f) + v2;
                        v3 = Vector512.Multiply(Vector512.Load(p + 24), f) + v3;
                    }
                    v0.Store(r + j);
                    v1.Store(r + j + 8);
                    v2.Store(r + j + 16);
                    v3.Store(r + j + 24);
                }
                for (; j + 8 <= to; j += 8)
                {
                    var v = Vector512.Load(r + j);
                    for (int c = 0; c < count; c++)
                        v = Vector512.Multiply(Vector512.Load(pv + (long)steps[c] * n + j), Vector512.Create(negF[c])) + v;
                    v.Store(r + j);
                }
            }
            for (; j < to; j++)
            {
                double v = r[j];
                for (int c = 0; c < count; c++) v = pv[(long)steps[c] * n + j] * negF[c] + v;
                r[j] = v;
            }
        }
    }
}
