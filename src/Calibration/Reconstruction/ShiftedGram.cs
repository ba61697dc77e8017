using System.Numerics.Tensors;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Calibration;

/// <summary>
/// XᵀX of a stride-1 Conv's patches at every output position of every image, from products of its input maps with
/// themselves shifted, instead of from the patches. The entry of channels c, c' at taps a, b sums x_c(q)·x_c'(q + δ)
/// with δ = s_b − s_a (the taps' input offsets) over a rectangle of positions q (where both lie in the map and q − s_a
/// is an output position). Pairs of taps with the same δ share those sums: each δ's rectangles are cut into cells
/// along all their edges, each cell is one product of C channels by C channels, and each pair of taps adds up the cells
/// inside its rectangle. For a 3×3 kernel on a 7×7 map that is about a quarter of the patches' multiply-adds
/// (ResNet-50's layer4 3×3 convs: 10,976 rows × 4,105 features, 2.3 CPU s on the patches).
/// </summary>
internal static class ShiftedGram
{
    /// <summary>
    /// Whether the rows of <paramref name="layout"/> are every output position of every image of one single-group,
    /// stride-1 Conv whose input map is one of its taps (a tap reads each output's own position, and the map is as large
    /// as the output), with fewer multiply-adds this way than from the patches.
    /// </summary>
    public static bool Applies(LayerLayout layout, int groups, int channels)
    {
        if (groups != 1 || layout.Nodes.Count != 1) return false;
        var node = layout.Nodes[0];
        if (node.Geometry is not { } g || g.KernelArea < 2 || g.StrideH != 1 || g.StrideW != 1 || g.OutH != g.InH || g.OutW != g.InW) return false;
        if (CenterTap(g) < 0) return false;
        long rows = node.Samples.Length;
        if (rows == 0 || rows % g.OutArea != 0 || node.Samples[0] != 0 || node.Samples[^1] != rows - 1) return false;
        double patches = (double)rows * (channels * g.KernelArea) * (channels * g.KernelArea) / 2;
        return ShiftedWork(g) * (rows / g.OutArea) * channels * channels < patches * 0.75;
    }

    /// <summary>
    /// Adds XᵀX into <paramref name="gram"/> (n×n row-major, the lower triangle as <see cref="NormalEquations.Gram"/>
    /// keeps it) from the stored feature-major rows <paramref name="x"/> (feature f of row r at x[f·rows + r], features
    /// channel-major then taps, the bias column of ones last when <paramref name="bias"/>).
    /// </summary>
    public static void Accumulate(float[] x, int rows, ConvGeometry g, int channels, bool bias, double[] gram, bool parallel)
    {
        int kk = g.KernelArea, n = channels * kk + (bias ? 1 : 0), area = g.OutArea, images = rows / area;
        int center = CenterTap(g);
        if (center < 0 || rows != images * area) throw new ArgumentException($"rows {rows} are not every position of a same-size stride-1 conv");
        if (x.Length < (long)n * rows || gram.Length < (long)n * n) throw new ArgumentException($"buffers too small for {n} features and {rows} rows");
        var (sy, sx) = Shifts(g);
        var u = Array.Empty<float>();
        var v = Array.Empty<float>();
        var sum = new double[(long)channels * channels];
        foreach (var (dy, dx, taps) in PairsByShift(sy, sx))
        {
            var boxes = taps.Select(t => Box(g, sy[t.A], sx[t.A], dy, dx)).ToArray();
            var cells = new List<(Rectangle Cell, double[] Sums)>();
            foreach (var c in Cells(boxes))
            {
                int k = images * (c.Y1 - c.Y0) * (c.X1 - c.X0);
                if (u.Length < (long)channels * k)
                {
                    u = new float[(long)channels * k];
                    v = new float[(long)channels * k];
                }
                Gather(x, rows, kk, center, channels, g.InW, area, images, c, 0, 0, u, k, parallel);
                Gather(x, rows, kk, center, channels, g.InW, area, images, c, dy, dx, v, k, parallel);
                var sums = new double[(long)channels * channels];
                BlockedProducts.Accumulate(u, channels, v, channels, k, k, sums, channels, parallel);
                cells.Add((c, sums));
            }
            for (int p = 0; p < taps.Count; p++)
            {
                var box = boxes[p];
                var inside = cells.Where(c => box.Contains(c.Cell.Y0, c.Cell.X0)).Select(c => c.Sums).ToArray();
                Scatter(inside, sum, channels, kk, n, taps[p].A, taps[p].B, gram, parallel);
            }
        }
        if (bias) BiasRow(x, rows, n, gram);
    }

    /// <summary>The tap that reads each output's own input position, or −1.</summary>
    private static int CenterTap(in ConvGeometry g)
    {
        for (int kh = 0; kh < g.KernelH; kh++)
            for (int kw = 0; kw < g.KernelW; kw++)
                if (kh * g.DilationH == g.PadTop && kw * g.DilationW == g.PadLeft) return kh * g.KernelW + kw;
        return -1;
    }

    /// <summary>Per tap, the input offset from the output position it reads.</summary>
    private static (int[] Y, int[] X) Shifts(in ConvGeometry g)
    {
        var sy = new int[g.KernelArea];
        var sx = new int[g.KernelArea];
        for (int kh = 0; kh < g.KernelH; kh++)
            for (int kw = 0; kw < g.KernelW; kw++)
            {
                sy[kh * g.KernelW + kw] = kh * g.DilationH - g.PadTop;
                sx[kh * g.KernelW + kw] = kw * g.DilationW - g.PadLeft;
            }
        return (sy, sx);
    }

    /// <summary>The pairs of taps a ≥ b (those that fill the lower triangle), grouped by δ = s_b − s_a.</summary>
    private static IEnumerable<(int Dy, int Dx, List<(int A, int B)> Taps)> PairsByShift(int[] sy, int[] sx)
    {
        var groups = new Dictionary<(int, int), List<(int, int)>>();
        for (int a = 0; a < sy.Length; a++)
            for (int b = 0; b <= a; b++)
            {
                var key = (sy[b] - sy[a], sx[b] - sx[a]);
                if (!groups.TryGetValue(key, out var list)) groups[key] = list = [];
                list.Add((a, b));
            }
        return groups.Select(e => (e.Key.Item1, e.Key.Item2, e.Value));
    }

    private readonly record struct Rectangle(int Y0, int Y1, int X0, int X1)
    {
        public bool Contains(int y, int x) => y >= Y0 && y < Y1 && x >= X0 && x < X1;
    }

    /// <summary>The q of tap a (offset sy, sx) paired at δ: q and q + δ in the map, q − s_a an output position; may be empty.</summary>
    private static Rectangle Box(in ConvGeometry g, int sy, int sx, int dy, int dx)
    {
        int y0 = Math.Max(Math.Max(sy, 0), -dy), x0 = Math.Max(Math.Max(sx, 0), -dx);
        int y1 = Math.Min(Math.Min(sy + g.OutH, g.InH), g.InH - dy), x1 = Math.Min(Math.Min(sx + g.OutW, g.InW), g.InW - dx);
        return new Rectangle(y0, Math.Max(y0, y1), x0, Math.Max(x0, x1));
    }

    /// <summary>The rectangles' union cut along all their edges: every cell lies wholly inside or outside each rectangle.</summary>
    private static IEnumerable<Rectangle> Cells(Rectangle[] boxes)
    {
        var ys = boxes.SelectMany(b => new[] { b.Y0, b.Y1 }).Distinct().Order().ToArray();
        var xs = boxes.SelectMany(b => new[] { b.X0, b.X1 }).Distinct().Order().ToArray();
        for (int i = 0; i + 1 < ys.Length; i++)
            for (int j = 0; j + 1 < xs.Length; j++)
                if (boxes.Any(b => b.Contains(ys[i], xs[j]))) yield return new Rectangle(ys[i], ys[i + 1], xs[j], xs[j + 1]);
    }

    /// <summary>Multiply-adds per image and per channel pair: every δ's cells once.</summary>
    private static long ShiftedWork(ConvGeometry g)
    {
        var (sy, sx) = Shifts(g);
        long work = 0;
        foreach (var (dy, dx, taps) in PairsByShift(sy, sx))
            foreach (var c in Cells([.. taps.Select(t => Box(g, sy[t.A], sx[t.A], dy, dx))]))
                work += (long)(c.Y1 - c.Y0) * (c.X1 - c.X0);
        return work;
    }

    /// <summary>
    /// Channel-major rows of a cell: dst[c·k + ..] holds x_c at q + (dy, dx) for q in the cell, image by image,
    /// read from the center tap's feature (the map itself).
    /// </summary>
    private static void Gather(float[] x, int rows, int kk, int center, int channels, int width, int area, int images,
        Rectangle cell, int dy, int dx, float[] dst, int k, bool parallel)
    {
        int w = cell.X1 - cell.X0;
        void Channel(int c)
        {
            var map = x.AsSpan((c * kk + center) * rows, rows);
            var to = dst.AsSpan(c * k, k);
            int at = 0;
            for (int i = 0; i < images; i++)
                for (int y = cell.Y0; y < cell.Y1; y++)
                {
                    map.Slice(i * area + (y + dy) * width + cell.X0 + dx, w).CopyTo(to.Slice(at, w));
                    at += w;
                }
        }
        if (parallel) Parallel.For(0, channels, Channel);
        else for (int c = 0; c < channels; c++) Channel(c);
    }

    /// <summary>
    /// Adds the sums S[c, c'] of a pair of taps a ≥ b (its cells added up into <paramref name="sum"/>) into the lower
    /// triangle: at (c·kk + a, c'·kk + b) for c' ≤ c, at the mirror (c'·kk + b, c·kk + a) for c' &gt; c (for a = b the block
    /// is symmetric and the first half is all). Both halves are written a row of the Gram at a time, row r taking the entries
    /// of c = r and of c' = r, so that consecutive writes share a page (a column of the Gram spans far more pages than the
    /// TLB maps; a column of S does not). Rows go over the cores.
    /// </summary>
    private static void Scatter(double[][] cells, double[] sum, int channels, int kk, int n, int a, int b, double[] gram, bool parallel)
    {
        void Sum(int c)
        {
            var s = sum.AsSpan(c * channels, channels);
            s.Clear();
            foreach (var cell in cells) TensorPrimitives.Add(s, cell.AsSpan(c * channels, channels), s);
        }
        void Row(int r)
        {
            long lower = (long)(r * kk + a) * n;
            for (int c2 = 0; c2 <= r; c2++) gram[lower + c2 * kk + b] += sum[r * channels + c2];
            if (a == b) return;
            long mirror = (long)(r * kk + b) * n;
            for (int c = 0; c < r; c++) gram[mirror + c * kk + a] += sum[c * channels + r];
        }
        if (parallel)
        {
            Parallel.For(0, channels, Sum);
            Parallel.For(0, channels, Row);
            return;
        }
        for (int c = 0; c < channels; c++) Sum(c);
        for (int r = 0; r < channels; r++) Row(r);
    }

    /// <summary>The bias column's row: each feature's sum over the rows (and the row count itself).</summary>
    private static void BiasRow(float[] x, int rows, int n, double[] gram)
    {
        long last = (long)(n - 1) * n;
        for (int f = 0; f < n; f++)
        {
            var xf = x.AsSpan(f * rows, rows);
            double sum = 0;
            for (int r = 0; r < rows; r++) sum += xf[r];
            gram[last + f] += sum;
        }
    }
}
