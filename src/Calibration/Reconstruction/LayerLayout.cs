namespace OnnxSlim.Calibration;

/// <summary>
/// The rows one node contributes to its layer's fit: how its features and targets are indexed, its conv
/// geometry, and its sampled rows (image-major indexes n·RowsPerImage + position, sorted).
/// </summary>
internal sealed record NodeRows(ActivationLayout Features, ActivationLayout Targets, ConvGeometry? Geometry, int RowsPerImage, long[] Samples);

/// <summary>The rows of one layer's fit, fixed once activation shapes are known; nodes sharing a weight may see different sizes.</summary>
internal sealed record LayerLayout
{
    public required IReadOnlyList<NodeRows> Nodes { get; init; }

    /// <summary>Columns of each group's regression: weights per output (+1 for the bias).</summary>
    public required int FeaturesPerGroup { get; init; }

    public required bool FitsBias { get; init; }

    public int Rows => Nodes.Sum(n => n.Samples.Length);

    /// <summary>Where node <paramref name="node"/>'s rows start in the layer's target rows.</summary>
    public int RowOffset(int node)
    {
        int offset = 0;
        for (int k = 0; k < node; k++) offset += Nodes[k].Samples.Length;
        return offset;
    }

    /// <summary>
    /// Checks the probed per-sample shapes (batch 1) of each node's feature and target values against the
    /// unit and fixes the layout; throws <see cref="LayerSkippedException"/> when they do not fit.
    /// Rows are sampled uniformly from the union of all nodes' rows.
    /// </summary>
    public static LayerLayout Plan(ConsumerUnit unit, IReadOnlyList<long[]> featureShapes, IReadOnlyList<long[]> targetShapes,
        int originalTargetChannels, int images, ReconstructionOptions options)
    {
        var shapes = new (ActivationLayout Features, ActivationLayout Targets, ConvGeometry? Geometry, int Rows, int Weights)[unit.Nodes.Count];
        for (int k = 0; k < shapes.Length; k++)
            shapes[k] = Node(unit, k, featureShapes[k], targetShapes[k], originalTargetChannels);
        int weights = shapes[0].Weights;
        bool bias = unit.Bias.Fitted;
        int columns = weights + (bias ? 1 : 0);
        if (columns > options.MaxFeatures)
            throw new LayerSkippedException($"{columns} features per group exceed MaxFeatures ({options.MaxFeatures})");
        long total = shapes.Sum(s => (long)images * s.Rows);
        var nodes = new NodeRows[shapes.Length];
        for (int k = 0; k < shapes.Length; k++)
        {
            long available = (long)images * shapes[k].Rows;
            int count = total <= options.SamplePositions ? (int)available
                : (int)Math.Max(1, Math.Round((double)options.SamplePositions * available / total));
            var samples = PositionSampler.Sample(available, count, PositionSampler.LayerSeed(options.Seed, unit.Nodes[k].Id));
            nodes[k] = new NodeRows(shapes[k].Features, shapes[k].Targets, shapes[k].Geometry, shapes[k].Rows, samples);
        }
        return new LayerLayout { Nodes = nodes, FeaturesPerGroup = columns, FitsBias = bias };
    }

    private static (ActivationLayout, ActivationLayout, ConvGeometry?, int Rows, int Weights) Node(
        ConsumerUnit unit, int k, long[] f, long[] t, int originalTargetChannels)
    {
        if (f.Length == 0 || f[0] != 1 || t.Length == 0 || t[0] != 1)
            throw new LayerSkippedException("its activations are not batch-major (a batch of 1 gave another leading size)");
        if (unit.Kind == ConsumerKind.Conv)
        {
            if (f.Length < 3 || f[1] != (long)unit.Groups * unit.InputsPerGroup)
                throw new LayerSkippedException($"input {Shape(f)} does not have {unit.Groups}×{unit.InputsPerGroup} channels");
            var g = ConvGeometry.Resolve(unit.Nodes[k], unit.WeightDims, f);
            long[] expected = unit.WeightDims.Length == 3 ? [1, originalTargetChannels, g.OutW] : [1, originalTargetChannels, g.OutH, g.OutW];
            if (!t.SequenceEqual(expected)) throw new LayerSkippedException($"original output {Shape(t)} differs from the expected {Shape(expected)}");
            return (new ActivationLayout((int)f[1], g.InArea, true), new ActivationLayout(originalTargetChannels, g.OutArea, true),
                g, g.OutArea, unit.InputsPerGroup * g.KernelArea);
        }
        if (unit.Kind == ConsumerKind.ConvTranspose)
        {
            int block = (int)Math.Round(Math.Sqrt(unit.Block));
            if (f.Length != 4 || f[1] != unit.InputsPerGroup) throw new LayerSkippedException($"input {Shape(f)} does not have {unit.InputsPerGroup} channels");
            long[] expected = [1, originalTargetChannels / unit.Block, f[2] * block, f[3] * block];
            if (!t.SequenceEqual(expected)) throw new LayerSkippedException($"original output {Shape(t)} differs from the expected {Shape(expected)}");
            int area = checked((int)(f[2] * f[3]));
            return (new ActivationLayout((int)f[1], area, true), new ActivationLayout(originalTargetChannels, area, true, block, (int)f[3]), null, area, unit.InputsPerGroup);
        }
        if (unit.Pooled)
        {
            if (f.Length != 4 || f[1] != unit.InputsPerGroup) throw new LayerSkippedException($"pooled input {Shape(f)} does not have {unit.InputsPerGroup} channels");
            if (t.Length != 4 || t[1] != originalTargetChannels || t[2] != f[2] || t[3] != f[3])
                throw new LayerSkippedException($"original pooled input {Shape(t)} does not match the pruned {Shape(f)}");
            int area = checked((int)(f[2] * f[3]));
            return (new ActivationLayout((int)f[1], area, true), new ActivationLayout(originalTargetChannels, area, true), null, area, unit.InputsPerGroup);
        }
        if (f.Length < 2 || f[^1] != unit.InputsPerGroup) throw new LayerSkippedException($"input {Shape(f)} does not end in {unit.InputsPerGroup} features");
        if (t.Length != f.Length || t[^1] != originalTargetChannels || !t[..^1].SequenceEqual(f[..^1]))
            throw new LayerSkippedException($"original output {Shape(t)} does not match input {Shape(f)}");
        if (unit.Kind == ConsumerKind.Gemm && f.Length != 2) throw new LayerSkippedException($"Gemm input {Shape(f)} is not 2-D");
        int rows = checked((int)f[1..^1].Aggregate(1L, (a, b) => a * b));
        return (new ActivationLayout(unit.InputsPerGroup, rows, false), new ActivationLayout(originalTargetChannels, rows, false), null, rows, unit.InputsPerGroup);
    }

    private static string Shape(long[] s) => "[" + string.Join("x", s) + "]";
}
