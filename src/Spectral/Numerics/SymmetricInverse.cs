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
            // Rows four at a time, so that each load of a pivot row serves four rows (the block's rows are a whole quad's).
            Parallel.For(0, (n + 3) / 4, options, () => new Scratch(), (q, _, scratch) =>
            {
                int first = q * 4, rows = Math.Min(4, n - first);
                if (first >= k0 && first < end) return scratch;
                for (int r = 0; r < rows; r++) BlockColumns(new Span<double>(a, (first + r) * n, n), pivots, n, k0, b, scratch, r);
                if (rows == 4)
                {
                    // The steps any of the four takes, each row with its own f (−0 where it skips the step: a sum with
                    // it leaves every value as it was, but for the sign of a zero). Dead channels (a column of zeros
                    // but its pivot) are steps no row takes: ResNet-50's 2048-wide inverses went one row at a time.
                    int count = scratch.Union(b);
                    UpdateFour(a, first, pivots, n, scratch.UnionSteps, count, scratch.UnionNegF, 0, k0);
                    UpdateFour(a, first, pivots, n, scratch.UnionSteps, count, scratch.UnionNegF, end, n);
                    return scratch;
                }
                for (int r = 0; r < rows; r++)
                {
                    int count = scratch.Count[r];
                    if (count == 0) continue;
                    var row = new Span<double>(a, (first + r) * n, n);
                    var steps = scratch.Steps.AsSpan(r * Block, count);
                    var negF = scratch.NegF.AsSpan(r * Block, count);
                    Update(row, pivots, n, steps, negF, 0, k0);
                    Update(row, pivots, n, steps, negF, end, n);
                }
                return scratch;
            }, _ => { });
        }
        return a;
    }

    /// <summary>Per row of a quad: the steps it takes (those whose f is not 0) and their −f.</summary>
    private sealed class Scratch
    {
        public readonly int[] Steps = new int[4 * Block];
        public readonly double[] NegF = new double[4 * Block];
        public readonly int[] Count = new int[4];
        public readonly int[] UnionSteps = new int[Block];
        public readonly double[] UnionNegF = new double[4 * Block]; // row r, c-th union step at [r·Block + c]
        private readonly int[] _cursor = new int[4];

        /// <summary>Merges the four rows' steps (each in step order) into <see cref="UnionSteps"/>; returns how many.</summary>
        public int Union(int b)
        {
            Array.Clear(_cursor);
            int count = 0;
            for (int s = 0; s < b; s++)
            {
                bool taken = false;
                for (int r = 0; r < 4; r++) taken |= _cursor[r] < Count[r] && Steps[r * Block + _cursor[r]] == s;
                if (!taken) continue;
                for (int r = 0; r < 4; r++)
                    UnionNegF[r * Block + count] = _cursor[r] < Count[r] && Steps[r * Block + _cursor[r]] == s ? NegF[r * Block + _cursor[r]++] : -0.0;
                UnionSteps[count++] = s;
            }
            return count;
        }
    }

    /// <summary>The block's steps on the block's columns of one row (quad member <paramref name="r"/>), one after another:
    /// each step's f is the row's value in its column by then.</summary>
    private static void BlockColumns(Span<double> row, double[] pivots, int n, int k0, int b, Scratch scratch, int r)
    {
        int count = 0, end = k0 + b;
        for (int s = 0; s < b; s++)
        {
            int k = k0 + s;
            double f = row[k];
            if (f == 0) continue;
            row[k] = 0;
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<double>(pivots, s * n + k0, b), -f, row[k0..end], row[k0..end]);
            scratch.Steps[r * Block + count] = s;
            scratch.NegF[r * Block + count++] = -f;
        }
        scratch.Count[r] = count;
    }

    /// <summary>Rows first..first+3 take the <paramref name="count"/> steps of <paramref name="steps"/> on columns [from, to), row r
    /// the c-th with −f in negF[r·Block + c]; a product, then a sum, in step order, as <see cref="Update"/>.</summary>
    private static unsafe void UpdateFour(double[] a, int first, double[] pivots, int n, int[] steps, int count, double[] negF, int from, int to)
    {
        if (count == 0) return;
        int j = from;
        fixed (double* a0 = a, pv = pivots, nf = negF)
        {
            double* r0 = a0 + (long)first * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
            if (Vector512.IsHardwareAccelerated)
                for (; j + 16 <= to; j += 16)
                {
                    var v00 = Vector512.Load(r0 + j); var v01 = Vector512.Load(r0 + j + 8);
                    var v10 = Vector512.Load(r1 + j); var v11 = Vector512.Load(r1 + j + 8);
                    var v20 = Vector512.Load(r2 + j); var v21 = Vector512.Load(r2 + j + 8);
                    var v30 = Vector512.Load(r3 + j); var v31 = Vector512.Load(r3 + j + 8);
                    for (int c = 0; c < count; c++)
                    {
                        double* p = pv + (long)steps[c] * n + j;
                        var p0 = Vector512.Load(p);
                        var p1 = Vector512.Load(p + 8);
                        var f0 = Vector512.Create(nf[c]);
                        v00 = Vector512.Multiply(p0, f0) + v00; v01 = Vector512.Multiply(p1, f0) + v01;
                        var f1 = Vector512.Create(nf[Block + c]);
                        v10 = Vector512.Multiply(p0, f1) + v10; v11 = Vector512.Multiply(p1, f1) + v11;
                        var f2 = Vector512.Create(nf[2 * Block + c]);
                        v20 = Vector512.Multiply(p0, f2) + v20; v21 = Vector512.Multiply(p1, f2) + v21;
                        var f3 = Vector512.Create(nf[3 * Block + c]);
                        v30 = Vector512.Multiply(p0, f3) + v30; v31 = Vector512.Multiply(p1, f3) + v31;
                    }
                    v00.Store(r0 + j); v01.Store(r0 + j + 8);
                    v10.Store(r1 + j); v11.Store(r1 + j + 8);
                    v20.Store(r2 + j); v21.Store(r2 + j + 8);
                    v30.Store(r3 + j); v31.Store(r3 + j + 8);
                }
        }
        if (j >= to) return;
        for (int r = 0; r < 4; r++)
            Update(new Span<double>(a, (first + r) * n, n), pivots, n, steps.AsSpan(0, count), negF.AsSpan(r * Block, count), j, to);
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
