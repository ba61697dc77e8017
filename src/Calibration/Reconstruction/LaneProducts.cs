using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Calibration;

/// <summary>
/// The products of <see cref="NormalEquations.Add"/> (XᵀX and XᵀY) for up to <see cref="Lanes"/> independent
/// small regressions at once, one per vector lane: the conv groups of a depthwise or grouped layer. Why: a
/// depthwise conv has hundreds of groups of ~26 features and one target each; the packed GEMM pads each such
/// product to 6×16 tiles and packs both operands per group, so PP-OCRv4's 5×5 depthwise fits took 1–3 s for a few
/// million useful products. Each entry is the sum <see cref="NormalEquations.Add"/> forms, bit for bit: per
/// panel of <see cref="Panel"/> rows a fused multiply-add chain over the rows in order from zero, then added.
/// </summary>
internal static class LaneProducts
{
    /// <summary>Regressions at once: a 512-bit vector of doubles where the CPU has them, else a 256-bit one.</summary>
    public static readonly int Lanes = Vector512.IsHardwareAccelerated ? 8 : 4;

    /// <summary>The packed GEMM's depth panel: its sums restart from zero at these row boundaries.</summary>
    public const int Panel = 256;

    /// <summary>
    /// Copies one regression's chunk into lane <paramref name="lane"/> of <paramref name="z"/>: features then targets,
    /// value v of row r at <c>z[(v·stride + r)·Lanes + lane]</c>; x and y as <see cref="NormalEquations.Add"/> takes them.
    /// </summary>
    public static void Load(double[] z, int lane, double[] x, int features, double[] y, int targets, int rows, int stride)
    {
        if ((uint)lane >= Lanes) throw new ArgumentException($"lane must lie in [0, {Lanes}), got {lane}");
        if (z.Length < (long)(features + targets) * stride * Lanes) throw new ArgumentException($"lane buffer holds {z.Length} values, too few for {features + targets} values × {stride} rows");
        for (int f = 0; f < features; f++) Interleave(x.AsSpan(f * stride, rows), z.AsSpan(f * stride * Lanes + lane));
        LoadTargets(z, lane, features, y, targets, rows, stride);
    }

    /// <summary>The targets' part of <see cref="Load"/> alone, for features written in the lane layout already (<see cref="RowReader.ConvPatchesLanes"/>).</summary>
    public static void LoadTargets(double[] z, int lane, int features, double[] y, int targets, int rows, int stride)
    {
        if ((uint)lane >= Lanes) throw new ArgumentException($"lane must lie in [0, {Lanes}), got {lane}");
        if (z.Length < (long)(features + targets) * stride * Lanes) throw new ArgumentException($"lane buffer holds {z.Length} values, too few for {features + targets} values × {stride} rows");
        for (int t = 0; t < targets; t++) Interleave(y.AsSpan(t * stride, rows), z.AsSpan((features + t) * stride * Lanes + lane));
    }

    private static void Interleave(ReadOnlySpan<double> source, Span<double> destination)
    {
        for (int r = 0; r < source.Length; r++) destination[r * Lanes] = source[r];
    }

    /// <summary>
    /// Adds the products of <paramref name="rows"/> rows of <paramref name="z"/> (see <see cref="Load"/>) to each of
    /// <paramref name="equations"/>, lane k to equations[k]: the whole XᵀX (both triangles, as the GEMM computes for
    /// small widths) and XᵀY. Lanes past the span are ignored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(ReadOnlySpan<NormalEquations> equations, double[] z, int rows, int stride)
    {
        if (equations.Length == 0 || equations.Length > Lanes) throw new ArgumentException($"between 1 and {Lanes} equations, got {equations.Length}");
        int n = equations[0].Features, m = equations[0].Targets, width = n + m;
        foreach (var eq in equations)
            if (eq.Features != n || eq.Targets != m) throw new ArgumentException($"equations of {eq.Features}×{eq.Targets} among ones of {n}×{m}");
        if (rows < 0 || rows > stride) throw new ArgumentException($"rows must lie in [0, {stride}], got {rows}");
        if (z.Length < (long)width * stride * Lanes) throw new ArgumentException($"lane buffer holds {z.Length} values, too few for {width} values × {stride} rows");
        Span<double> sums = stackalloc double[16 * Lanes];
        for (int p0 = 0; p0 < rows; p0 += Panel)
        {
            int count = Math.Min(Panel, rows - p0);
            // Blocks of 4 × 4 entries (i, j): i over features and targets, j over features up to i's block.
            for (int i0 = 0; i0 < width; i0 += 4)
                for (int j0 = 0; j0 < n && j0 <= i0; j0 += 4)
                {
                    if (Lanes == 8) Block512(z, stride, p0, count, i0, Math.Min(4, width - i0), j0, Math.Min(4, n - j0), sums);
                    else Block256(z, stride, p0, count, i0, Math.Min(4, width - i0), j0, Math.Min(4, n - j0), sums);
                    for (int a = 0; a < 4 && i0 + a < width; a++)
                        for (int b = 0; b < 4 && j0 + b < n; b++)
                        {
                            int i = i0 + a, j = j0 + b;
                            if (i < n && j > i) continue; // the upper triangle comes from (j, i)
                            var v = sums.Slice((a * 4 + b) * Lanes, Lanes);
                            for (int k = 0; k < equations.Length; k++)
                            {
                                var eq = equations[k];
                                double s = v[k];
                                if (i < n)
                                {
                                    eq.Gram[i * n + j] += s;
                                    if (j != i) eq.Gram[j * n + i] += s;
                                }
                                else eq.Cross[j * m + i - n] += s;
                            }
                        }
                }
        }
    }

    /// <summary>sums[(a·4 + b)·Lanes + lane] = Σ_r z_(i0+a)[r]·z_(j0+b)[r] over rows [p0, p0+count), one fused multiply-add chain per lane from zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block256(double[] z, int stride, int p0, int count, int i0, int ni, int j0, int nj, Span<double> sums)
    {
        // Missing rows of a partial block read row i0 (or j0) again; their sums are never used.
        ref double zi0 = ref z[(i0 * stride + p0) * Lanes];
        ref double zi1 = ref z[((i0 + Math.Min(1, ni - 1)) * stride + p0) * Lanes];
        ref double zi2 = ref z[((i0 + Math.Min(2, ni - 1)) * stride + p0) * Lanes];
        ref double zi3 = ref z[((i0 + Math.Min(3, ni - 1)) * stride + p0) * Lanes];
        ref double zj0 = ref z[(j0 * stride + p0) * Lanes];
        ref double zj1 = ref z[((j0 + Math.Min(1, nj - 1)) * stride + p0) * Lanes];
        ref double zj2 = ref z[((j0 + Math.Min(2, nj - 1)) * stride + p0) * Lanes];
        ref double zj3 = ref z[((j0 + Math.Min(3, nj - 1)) * stride + p0) * Lanes];
        Vector256<double> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector256<double> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector256<double> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector256<double> s30 = default, s31 = default, s32 = default, s33 = default;
        for (int r = 0; r < count; r++)
        {
            nuint o = (nuint)(r * Lanes);
            var x0 = Vector256.LoadUnsafe(ref zi0, o); var x1 = Vector256.LoadUnsafe(ref zi1, o);
            var x2 = Vector256.LoadUnsafe(ref zi2, o); var x3 = Vector256.LoadUnsafe(ref zi3, o);
            var y0 = Vector256.LoadUnsafe(ref zj0, o); var y1 = Vector256.LoadUnsafe(ref zj1, o);
            var y2 = Vector256.LoadUnsafe(ref zj2, o); var y3 = Vector256.LoadUnsafe(ref zj3, o);
            s00 = Vector256.FusedMultiplyAdd(x0, y0, s00); s01 = Vector256.FusedMultiplyAdd(x0, y1, s01);
            s02 = Vector256.FusedMultiplyAdd(x0, y2, s02); s03 = Vector256.FusedMultiplyAdd(x0, y3, s03);
            s10 = Vector256.FusedMultiplyAdd(x1, y0, s10); s11 = Vector256.FusedMultiplyAdd(x1, y1, s11);
            s12 = Vector256.FusedMultiplyAdd(x1, y2, s12); s13 = Vector256.FusedMultiplyAdd(x1, y3, s13);
            s20 = Vector256.FusedMultiplyAdd(x2, y0, s20); s21 = Vector256.FusedMultiplyAdd(x2, y1, s21);
            s22 = Vector256.FusedMultiplyAdd(x2, y2, s22); s23 = Vector256.FusedMultiplyAdd(x2, y3, s23);
            s30 = Vector256.FusedMultiplyAdd(x3, y0, s30); s31 = Vector256.FusedMultiplyAdd(x3, y1, s31);
            s32 = Vector256.FusedMultiplyAdd(x3, y2, s32); s33 = Vector256.FusedMultiplyAdd(x3, y3, s33);
        }
        s00.CopyTo(sums[(0 * Lanes)..]); s01.CopyTo(sums[(1 * Lanes)..]); s02.CopyTo(sums[(2 * Lanes)..]); s03.CopyTo(sums[(3 * Lanes)..]);
        s10.CopyTo(sums[(4 * Lanes)..]); s11.CopyTo(sums[(5 * Lanes)..]); s12.CopyTo(sums[(6 * Lanes)..]); s13.CopyTo(sums[(7 * Lanes)..]);
        s20.CopyTo(sums[(8 * Lanes)..]); s21.CopyTo(sums[(9 * Lanes)..]); s22.CopyTo(sums[(10 * Lanes)..]); s23.CopyTo(sums[(11 * Lanes)..]);
        s30.CopyTo(sums[(12 * Lanes)..]); s31.CopyTo(sums[(13 * Lanes)..]); s32.CopyTo(sums[(14 * Lanes)..]); s33.CopyTo(sums[(15 * Lanes)..]);
    }

    /// <summary>The same as <see cref="Block256"/> with 512-bit vectors (eight lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block512(double[] z, int stride, int p0, int count, int i0, int ni, int j0, int nj, Span<double> sums)
    {
        // Missing rows of a partial block read row i0 (or j0) again; their sums are never used.
        ref double zi0 = ref z[(i0 * stride + p0) * Lanes];
        ref double zi1 = ref z[((i0 + Math.Min(1, ni - 1)) * stride + p0) * Lanes];
        ref double zi2 = ref z[((i0 + Math.Min(2, ni - 1)) * stride + p0) * Lanes];
        ref double zi3 = ref z[((i0 + Math.Min(3, ni - 1)) * stride + p0) * Lanes];
        ref double zj0 = ref z[(j0 * stride + p0) * Lanes];
        ref double zj1 = ref z[((j0 + Math.Min(1, nj - 1)) * stride + p0) * Lanes];
        ref double zj2 = ref z[((j0 + Math.Min(2, nj - 1)) * stride + p0) * Lanes];
        ref double zj3 = ref z[((j0 + Math.Min(3, nj - 1)) * stride + p0) * Lanes];
        Vector512<double> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector512<double> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<double> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector512<double> s30 = default, s31 = default, s32 = default, s33 = default;
        for (int r = 0; r < count; r++)
        {
            nuint o = (nuint)(r * Lanes);
            var x0 = Vector512.LoadUnsafe(ref zi0, o); var x1 = Vector512.LoadUnsafe(ref zi1, o);
            var x2 = Vector512.LoadUnsafe(ref zi2, o); var x3 = Vector512.LoadUnsafe(ref zi3, o);
            var y0 = Vector512.LoadUnsafe(ref zj0, o); var y1 = Vector512.LoadUnsafe(ref zj1, o);
            var y2 = Vector512.LoadUnsafe(ref zj2, o); var y3 = Vector512.LoadUnsafe(ref zj3, o);
            s00 = Vector512.FusedMultiplyAdd(x0, y0, s00); s01 = Vector512.FusedMultiplyAdd(x0, y1, s01);
            s02 = Vector512.FusedMultiplyAdd(x0, y2, s02); s03 = Vector512.FusedMultiplyAdd(x0, y3, s03);
            s10 = Vector512.FusedMultiplyAdd(x1, y0, s10); s11 = Vector512.FusedMultiplyAdd(x1, y1, s11);
            s12 = Vector512.FusedMultiplyAdd(x1, y2, s12); s13 = Vector512.FusedMultiplyAdd(x1, y3, s13);
            s20 = Vector512.FusedMultiplyAdd(x2, y0, s20); s21 = Vector512.FusedMultiplyAdd(x2, y1, s21);
            s22 = Vector512.FusedMultiplyAdd(x2, y2, s22); s23 = Vector512.FusedMultiplyAdd(x2, y3, s23);
            s30 = Vector512.FusedMultiplyAdd(x3, y0, s30); s31 = Vector512.FusedMultiplyAdd(x3, y1, s31);
            s32 = Vector512.FusedMultiplyAdd(x3, y2, s32); s33 = Vector512.FusedMultiplyAdd(x3, y3, s33);
        }
        s00.CopyTo(sums[(0 * Lanes)..]); s01.CopyTo(sums[(1 * Lanes)..]); s02.CopyTo(sums[(2 * Lanes)..]); s03.CopyTo(sums[(3 * Lanes)..]);
        s10.CopyTo(sums[(4 * Lanes)..]); s11.CopyTo(sums[(5 * Lanes)..]); s12.CopyTo(sums[(6 * Lanes)..]); s13.CopyTo(sums[(7 * Lanes)..]);
        s20.CopyTo(sums[(8 * Lanes)..]); s21.CopyTo(sums[(9 * Lanes)..]); s22.CopyTo(sums[(10 * Lanes)..]); s23.CopyTo(sums[(11 * Lanes)..]);
        s30.CopyTo(sums[(12 * Lanes)..]); s31.CopyTo(sums[(13 * Lanes)..]); s32.CopyTo(sums[(14 * Lanes)..]); s33.CopyTo(sums[(15 * Lanes)..]);
    }
}
