using System.Diagnostics;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Runtime.Recovery;

/// <summary>
/// One layer's regression in progress: its sampled original targets, the normal equations of each
/// group, and the chunk buffers rows pass through. Feed it batches of the pruned model's activations,
/// then <see cref="Solve"/>.
/// </summary>
internal sealed class LayerFit
{
    private const int Chunk = 512;
    private readonly NormalEquations[] _equations;
    private readonly double[] _x, _y;
    private readonly long[] _rows = new long[Chunk];
    private readonly Stopwatch _clock = new();

    public LayerFit(ConsumerUnit unit, LayerLayout layout)
    {
        Unit = unit;
        Layout = layout;
        _equations = new NormalEquations[unit.Groups];
        for (int g = 0; g < unit.Groups; g++) _equations[g] = new NormalEquations(layout.FeaturesPerGroup, unit.OutputsPerGroup);
        _x = new double[(long)layout.FeaturesPerGroup * Chunk];
        _y = new double[(long)unit.OutputsPerGroup * Chunk];
    }

    public ConsumerUnit Unit { get; }
    public LayerLayout Layout { get; }

    /// <summary>The original model's outputs at the sampled rows, row-major (rows × outputs); null until collected and after solving.</summary>
    public float[]? Targets { get; set; }

    public long TargetBytes => (long)Layout.Rows * Unit.Outputs * sizeof(float);

    /// <summary>
    /// Adds the sampled rows of node <paramref name="node"/> that fall in a batch of images starting at
    /// image <paramref name="firstImage"/>; <paramref name="activation"/> is that batch's feature value.
    /// </summary>
    public void Accumulate(int node, ReadOnlySpan<float> activation, int firstImage, int images)
    {
        if (Targets is null) throw new InvalidOperationException($"targets of {Unit.Name} were not collected");
        _clock.Start();
        var rowsOf = Layout.Nodes[node];
        var samples = rowsOf.Samples;
        long first = (long)firstImage * rowsOf.RowsPerImage, end = first + (long)images * rowsOf.RowsPerImage;
        int lo = LowerBound(samples, first), hi = LowerBound(samples, end);
        int rowBase = Layout.RowOffset(node);
        int mg = Unit.OutputsPerGroup, weights = Layout.FeaturesPerGroup - (Layout.FitsBias ? 1 : 0);
        for (int start = lo; start < hi; start += Chunk)
        {
            int count = Math.Min(Chunk, hi - start);
            for (int r = 0; r < count; r++) _rows[r] = samples[start + r] - first;
            var rows = _rows.AsSpan(0, count);
            for (int g = 0; g < Unit.Groups; g++)
            {
                if (rowsOf.Geometry is { } geometry)
                    RowReader.ConvPatches(activation, rowsOf.Features, geometry, g * Unit.InputsPerGroup, Unit.InputsPerGroup, rows, _x, Chunk);
                else
                    RowReader.Channels(activation, rowsOf.Features, 0, Unit.InputsPerGroup, rows, _x, Chunk);
                if (Layout.FitsBias) RowReader.Ones(weights, count, _x, Chunk);
                RowReader.Targets(Targets, Unit.Outputs, rowBase + start, count, g * mg, mg, _y, Chunk);
                _equations[g].Add(_x, _y, count, Chunk);
            }
        }
        _clock.Stop();
    }

    /// <summary>Solves every group, writes the weights into <paramref name="model"/> and says how the layer's error changed.</summary>
    public LayerReconstruction Solve(OnnxModel model, double ridge)
    {
        _clock.Start();
        Targets = null;
        var before = LayerWeights.Read(Unit, Layout, model.Graph);
        var after = new double[Unit.Groups][];
        double errorBefore = 0, errorAfter = 0, total = 0;
        for (int g = 0; g < Unit.Groups; g++)
        {
            var eq = _equations[g];
            after[g] = RidgeSolver.Solve(eq, ridge, Layout.FitsBias) ?? throw new LayerSkippedException("the normal equations could not be solved");
            eq.Symmetrize();
            errorBefore += eq.SquaredError(before[g]);
            errorAfter += eq.SquaredError(after[g]);
            total += eq.TotalTargetSquares;
        }
        errorBefore = total > 0 ? Math.Sqrt(errorBefore / total) : 0;
        errorAfter = total > 0 ? Math.Sqrt(errorAfter / total) : 0;
        // The fit minimises the regularised error; if the sliced weights already do better on the
        // unregularised one (ridge too strong, nothing to recover), keep them.
        bool improved = errorAfter < errorBefore;
        if (improved) LayerWeights.Write(Unit, Layout, after, model);
        _clock.Stop();
        return new LayerReconstruction(Unit.Name, Unit.OpType, Layout.Rows, Layout.FeaturesPerGroup, Unit.Outputs,
            errorBefore, improved ? errorAfter : errorBefore, _clock.Elapsed.TotalSeconds,
            improved ? null : "the fit did not lower the error; weights left as sliced");
    }

    private static int LowerBound(long[] sorted, long value)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] < value) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
