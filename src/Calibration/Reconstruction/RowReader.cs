using System.Numerics;
using System.Runtime.CompilerServices;
namespace OnnxSlim.Calibration;

/// <summary>
/// Copies sampled rows of a batch's activation into a feature-major chunk (feature f of row r at
/// <c>dst[f·stride + r]</c>), the layout <see cref="NormalEquations.Add"/> takes. The destination is float64, or float32
/// where the rows go straight into float32 products: the activations are float32, so either holds them exactly.
/// </summary>
internal static class RowReader
{
    /// <summary>
    /// im2col for one group of a Conv: row = output position (n, oh, ow); features (c, kh, kw) in the
    /// weight's order, reading input channels [first, first+channels); zero outside the input (padding).
    /// Feature by feature, so the writes run along dst: row by row they were a stride apart (4 KiB for 512-row
    /// chunks, every write in one cache set), which made this a tenth of PP-OCRv4 rec's calibrated run.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ConvPatches<T>(ReadOnlySpan<float> x, ActivationLayout input, in ConvGeometry g, int first, int channels,
        ReadOnlySpan<long> rows, T[] dst, int stride) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var patches = new PatchRows(rows.Length);
        patches.Set(rows, g, input);
        ConvPatches(x, input, g, first, channels, patches, dst, stride);
    }

    /// <summary>The same, for rows whose patch positions are worked out already; float32 or float64 rows (the activation's values either way).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ConvPatches<T>(ReadOnlySpan<float> x, ActivationLayout input, in ConvGeometry g, int first, int channels,
        PatchRows rows, T[] dst, int stride) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int count = rows.Count, kk = g.KernelArea;
        var planes = rows.Planes;
        var tops = rows.Tops;
        var lefts = rows.Lefts;
        for (int c = 0; c < channels; c++)
        {
            long channel = (long)(first + c) * input.Area;
            for (int kh = 0; kh < g.KernelH; kh++)
            {
                int dh = kh * g.DilationH;
                for (int kw = 0; kw < g.KernelW; kw++)
                {
                    int dw = kw * g.DilationW;
                    var d = dst.AsSpan((c * kk + kh * g.KernelW + kw) * stride, count);
                    for (int r = 0; r < count; r++)
                    {
                        int ih = tops[r] + dh, iw = lefts[r] + dw;
                        d[r] = (uint)ih < (uint)g.InH && (uint)iw < (uint)g.InW ? T.CreateTruncating(x[(int)(planes[r] + channel + ih * g.InW + iw)]) : T.Zero;
                    }
                }
            }
        }
    }

    /// <summary>
    /// The same patches for <paramref name="groups"/> consecutive conv groups from <paramref name="firstGroup"/> at once,
    /// straight into the lane layout of <see cref="LaneProducts"/>: feature f of row r of group firstGroup + l at
    /// <c>z[(f·stride + r)·lanes + l]</c>. The groups' values at one position lie side by side there, so a depthwise
    /// conv's rows are written once instead of per group and then interleaved.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ConvPatchesLanes(ReadOnlySpan<float> x, ActivationLayout input, in ConvGeometry g, int firstGroup, int channelsPerGroup,
        int groups, PatchRows rows, double[] z, int stride, int lanes)
    {
        if (groups < 1 || groups > lanes) throw new ArgumentException($"groups must lie in [1, {lanes}], got {groups}");
        int count = rows.Count, kk = g.KernelArea;
        var planes = rows.Planes;
        var tops = rows.Tops;
        var lefts = rows.Lefts;
        long groupStride = (long)channelsPerGroup * input.Area;
        for (int c = 0; c < channelsPerGroup; c++)
        {
            long channel = ((long)firstGroup * channelsPerGroup + c) * input.Area;
            for (int kh = 0; kh < g.KernelH; kh++)
            {
                int dh = kh * g.DilationH;
                for (int kw = 0; kw < g.KernelW; kw++)
                {
                    int dw = kw * g.DilationW;
                    int f = c * kk + kh * g.KernelW + kw;
                    for (int r = 0; r < count; r++)
                    {
                        int ih = tops[r] + dh, iw = lefts[r] + dw;
                        var d = z.AsSpan((f * stride + r) * lanes, groups);
                        if ((uint)ih < (uint)g.InH && (uint)iw < (uint)g.InW)
                        {
                            long at = planes[r] + channel + ih * g.InW + iw;
                            for (int l = 0; l < groups; l++) d[l] = x[(int)(at + l * groupStride)];
                        }
                        else d.Clear();
                    }
                }
            }
        }
    }

    /// <summary>Channels [first, first+count) of each row (Gemm/MatMul inputs, pooled per-position features).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Channels<T>(ReadOnlySpan<float> x, ActivationLayout layout, int first, int count, ReadOnlySpan<long> rows, T[] dst, int stride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Channel by channel, each row's start worked out once: row by row the writes were a stride apart (one cache set).
        int n = rows.Length;
        Span<long> starts = n <= 1024 ? stackalloc long[n] : new long[n];
        long step = layout.ChannelStarts(rows, starts);
        for (int c = 0; c < count; c++)
        {
            var d = dst.AsSpan(c * stride, n);
            if (step == 0)
                for (int r = 0; r < n; r++) d[r] = T.CreateTruncating(x[(int)layout.Index(rows[r], first + c)]);
            else
            {
                long offset = (first + c) * step;
                for (int r = 0; r < n; r++) d[r] = T.CreateTruncating(x[(int)(starts[r] + offset)]);
            }
        }
    }

    /// <summary>
    /// Subtracts the pruned model's skip operand, scaled per output, from the chunk's targets: the residual
    /// correction (the stored targets already hold y_orig + s_orig/a).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SubtractSkip(ReadOnlySpan<float> skip, ActivationLayout layout, ReadOnlySpan<long> rows, int first, int count,
        ReadOnlySpan<double> inverseScale, double[] dst, int stride)
    {
        // Each row's start worked out once, not a division per entry (ResNet-50's conv3 fits: 2,048 targets a row).
        int n = rows.Length;
        Span<long> starts = n <= 1024 ? stackalloc long[n] : new long[n];
        long step = layout.ChannelStarts(rows, starts);
        for (int t = 0; t < count; t++)
        {
            double inv = inverseScale[first + t];
            if (inv == 0) continue;
            var d = dst.AsSpan(t * stride, n);
            if (step == 0)
                for (int r = 0; r < n; r++) d[r] -= inv * skip[(int)layout.Index(rows[r], first + t)];
            else
            {
                long offset = (first + t) * step;
                for (int r = 0; r < n; r++) d[r] -= inv * skip[(int)(starts[r] + offset)];
            }
        }
    }

    /// <summary>Columns [first, first+count) of the stored target rows [rowStart, rowStart+rows) (row-major, width m).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Targets(ReadOnlySpan<float> targets, int m, int rowStart, int rows, int first, int count, double[] dst, int stride)
    {
        // A block of rows at a time, so that each target's writes fill a cache line: row by row they were a stride apart
        // (4 KiB for 512-row chunks, every write in one cache set; ResNet-50's conv3 fits have 2,000 targets a row).
        const int block = 8;
        for (int r0 = 0; r0 < rows; r0 += block)
        {
            int here = Math.Min(block, rows - r0);
            for (int t = 0; t < count; t++)
            {
                var d = dst.AsSpan(t * stride + r0, here);
                int at = (rowStart + r0) * m + first + t;
                for (int r = 0; r < here; r++, at += m) d[r] = targets[at];
            }
        }
    }
}
