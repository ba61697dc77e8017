namespace OnnxSlim.Calibration.Tests;

public sealed class ShiftedGramTests
{
    public static TheoryData<int, int, int, int, int, int, bool> Geometries => new()
    {
        // in H, W, kernel H, W, dilation, images, bias
        { 5, 7, 3, 3, 1, 2, true },
        { 7, 7, 3, 3, 1, 3, false },
        { 6, 6, 5, 5, 1, 2, true },
        { 7, 5, 3, 3, 2, 2, true },
        { 1, 9, 1, 3, 1, 3, true },
        { 4, 4, 3, 1, 1, 2, false },
    };

    /// <summary>XᵀX from the map's shifted products is the patches' XᵀX (lower triangle, bias row included) for same-size stride-1 convs.</summary>
    [Theory]
    [MemberData(nameof(Geometries))]
    public void Gram_from_shifted_maps_is_the_patches_Gram(int h, int w, int kh, int kw, int dilation, int images, bool bias)
    {
        const int channels = 4;
        var g = new ConvGeometry(InH: h, InW: w, KernelH: kh, KernelW: kw, StrideH: 1, StrideW: 1, DilationH: dilation, DilationW: dilation,
            PadTop: (kh - 1) / 2 * dilation, PadLeft: (kw - 1) / 2 * dilation, OutH: h, OutW: w);
        var (x, rows, n) = StoredPatches(g, channels, images, bias);
        var expected = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = 0;
                for (int r = 0; r < rows; r++) s += (double)x[i * rows + r] * x[j * rows + r];
                expected[i * n + j] = s;
            }
        var gram = new double[n * n];
        ShiftedGram.Accumulate(x, rows, g, channels, bias, gram, parallel: false);
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double scale = Math.Sqrt(Math.Max(expected[i * n + i] * expected[j * n + j], 1e-30));
                Assert.True(Math.Abs(gram[i * n + j] - expected[i * n + j]) <= 1e-6 * scale,
                    $"G[{i},{j}] = {gram[i * n + j]}, the patches give {expected[i * n + j]}");
            }
        Assert.Contains(x, v => v == 0); // some taps read the padding, which the rectangles must leave out
    }

    /// <summary>It applies to every position of a same-size stride-1 conv only, and only where it saves work.</summary>
    [Fact]
    public void Applies_to_every_position_of_a_same_size_stride_1_conv()
    {
        var same = new ConvGeometry(7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 7, 7);
        Assert.True(ShiftedGram.Applies(Layout(same, 2 * 49, 2 * 49), groups: 1, channels: 64));
        Assert.False(ShiftedGram.Applies(Layout(same, 2 * 49, 2 * 49), groups: 2, channels: 64));
        Assert.False(ShiftedGram.Applies(Layout(same, 2 * 49, 60), groups: 1, channels: 64)); // sampled rows
        var strided = new ConvGeometry(14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 7, 7);
        Assert.False(ShiftedGram.Applies(Layout(strided, 2 * 49, 2 * 49), groups: 1, channels: 64));
        var valid = new ConvGeometry(9, 9, 3, 3, 1, 1, 1, 1, 0, 0, 7, 7);
        Assert.False(ShiftedGram.Applies(Layout(valid, 2 * 49, 2 * 49), groups: 1, channels: 64));
        var pointwise = new ConvGeometry(7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 7, 7);
        Assert.False(ShiftedGram.Applies(Layout(pointwise, 2 * 49, 2 * 49), groups: 1, channels: 64));
    }

    private static LayerLayout Layout(ConvGeometry g, long available, int count)
    {
        long[] samples = PositionSampler.Sample(available, count, 7);
        var node = new NodeRows(new ActivationLayout(64, g.InArea, true), new ActivationLayout(8, g.OutArea, true), g, g.OutArea, samples);
        return new LayerLayout { Nodes = [node], FeaturesPerGroup = 64 * g.KernelArea + 1, FitsBias = true };
    }

    /// <summary>Every position's patches of a seeded input, feature-major as LayerFit stores them, with a bias column of ones.</summary>
    private static (float[] X, int Rows, int N) StoredPatches(ConvGeometry g, int channels, int images, bool bias)
    {
        var random = new Random(11);
        var input = new ActivationLayout(channels, g.InArea, true);
        var map = Enumerable.Range(0, images * channels * g.InArea).Select(_ => (float)(random.NextDouble() * 2 - 0.5)).ToArray();
        int rows = images * g.OutArea, n = channels * g.KernelArea + (bias ? 1 : 0);
        var x = new float[n * rows];
        RowReader.ConvPatches(map, input, g, 0, channels, [.. Enumerable.Range(0, rows).Select(r => (long)r)], x, rows);
        if (bias) x.AsSpan((n - 1) * rows, rows).Fill(1);
        return (x, rows, n);
    }
}
