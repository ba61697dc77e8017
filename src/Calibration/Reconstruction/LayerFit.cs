using System.Diagnostics;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using OnnxSlim.GraphIO;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Calibration;

/// <summary>
/// One layer's regression in progress: its sampled original targets, the normal equations of each
/// group, and the chunk buffers rows pass through. Feed it batches of the pruned model's activations,
/// then <see cref="Solve"/>. When a Relu follows the layer, the rows are also kept (feature-major) for
/// the ReLU-aware re-solves.
/// </summary>
internal sealed class LayerFit
{
    private const int Chunk = 512;
    private readonly long[] _rows = new long[Chunk];
    private readonly PatchRows _patches = new(Chunk);
    private readonly Stopwatch _clock = new();
    private readonly ReconstructionOptions _options;

    // The chunk buffers, the sums of each group, and for the ReLU-aware refinement the rows themselves, per group: features
    // (n × R), targets τ (m_g × R) and the chain's offset c = b + s_pruned (m_g × R), so that z = a·τ + c is
    // the original pre-Relu value of each entry. float32 rows: the iterations only choose targets; XᵀX and
    // the solves stay float64, sums over tiles too. All released once solved (a level's fits live until
    // the end of the run, and these are the large parts).
    private NormalEquations[]? _equations;
    private bool _solved;
    private ChunkBuffers[] _buffers = [];
    private float[][]? _storedX, _storedT, _storedC;
    private PendingRows[]? _pending;
    private int _reluSolves;
    private int _restored;

    /// <summary>One worker's chunk of a group: features x (n × chunk), targets y (m_g × chunk), and with lanes the groups interleaved (see <see cref="LaneProducts"/>).</summary>
    private sealed class ChunkBuffers(int features, int targets, bool lanes)
    {
        /// <summary>Float64 features, for the lanes only: the products read float32 copies, which are read straight from the activation.</summary>
        public double[] X { get; } = lanes ? new double[(long)features * Chunk] : [];
        public double[] Y { get; } = new double[(long)targets * Chunk];
        /// <summary>Float32 copies of <see cref="X"/> and <see cref="Y"/> for the products (see <see cref="NormalEquations.Add(float[], float[], double[], int, int)"/>); the lanes keep float64.</summary>
        public float[] Xs { get; } = lanes ? [] : new float[(long)features * Chunk];
        public float[] Ys { get; } = lanes ? [] : new float[(long)targets * Chunk];
        public double[] Z { get; } = lanes ? new double[(long)(features + targets) * Chunk * LaneProducts.Lanes] : [];
    }

    /// <summary>
    /// Whether the groups' products go through <see cref="LaneProducts"/>, several groups at once: for grouped layers
    /// whose groups are small (depthwise convs), where the packed GEMM spends most of its time padding and packing.
    /// </summary>
    private bool UsesLanes => Unit.Groups > 1 && Layout.FeaturesPerGroup + Unit.OutputsPerGroup <= MaxLaneWidth;

    private const int MaxLaneWidth = 64;

    public LayerFit(ConsumerUnit unit, LayerLayout layout, ReconstructionOptions options)
    {
        Unit = unit;
        Layout = layout;
        _options = options;
    }

    /// <summary>Allocates the sums and buffers when the layer's level starts, not when the run is planned: only one level's layers hold them at a time.</summary>
    private NormalEquations[] Equations()
    {
        if (_equations is not null) return _equations;
        if (_solved) throw new InvalidOperationException($"{Unit.Name} was solved already");
        int n = Layout.FeaturesPerGroup, mg = Unit.OutputsPerGroup, groups = Unit.Groups;
        // Groups go to the workers a lane block at a time; each worker has its own buffers.
        int workers = UsesLanes ? Math.Clamp((groups + LaneProducts.Lanes - 1) / LaneProducts.Lanes, 1, Environment.ProcessorCount) : 1;
        _buffers = [.. Enumerable.Range(0, workers).Select(_ => new ChunkBuffers(n, mg, UsesLanes))];
        long rows = Layout.Rows;
        long bytes = (long)groups * (n + 2L * mg) * rows * sizeof(float);
        if (Unit.Chain is { ReluFollows: true } && _options.ReluIterations > 0 && bytes <= _options.StoredRowsBudgetBytes && (!UsesLanes || _options.GateAwareSmallGroups))
        {
            _storedX = [.. Enumerable.Range(0, groups).Select(_ => LargeArrays.Zeroed<float>((long)n * rows))];
            _storedT = [.. Enumerable.Range(0, groups).Select(_ => LargeArrays.Zeroed<float>((long)mg * rows))];
            // The chain's offsets serve the re-solves alone: none for a layer over their budget.
            if ((double)rows * n * mg * groups <= _options.MaxReluProductMacs)
                _storedC = [.. Enumerable.Range(0, groups).Select(_ => LargeArrays.Zeroed<float>((long)mg * rows))];
        }
        else if (!UsesLanes) _pending = [.. Enumerable.Range(0, groups).Select(_ => new PendingRows(n, mg, rows))];
        return _equations = [.. Enumerable.Range(0, groups).Select(_ => new NormalEquations(n, mg))];
    }

    public ConsumerUnit Unit { get; }
    public LayerLayout Layout { get; }

    /// <summary>The original model's outputs at the sampled rows, row-major (rows × outputs); null until collected and after solving.</summary>
    public float[]? Targets { get; set; }

    public long TargetBytes => (long)Layout.Rows * Unit.Outputs * sizeof(float);

    /// <summary>
    /// Whether the fit uses the ReLU-aware re-solves (a Relu follows, the rows fit in memory and its products are within
    /// <see cref="ReconstructionOptions.MaxReluProductMacs"/>: the chain's offsets are kept); known once accumulating. A larger
    /// layer still keeps its rows and targets, for the products at solve time (<see cref="ProductsAtSolve"/>).
    /// </summary>
    public bool ReluAware => _storedC is not null;

    /// <summary>
    /// Whether the fit's outputs get their spread back (<see cref="VarianceRestoration"/>; it needs a bias of their own, not one
    /// a ConvTranspose's k² taps share): after the plain fit, and after each hard-gate-aware re-solve (hard-swish), against the
    /// original pre-activation's variance. Not after a Relu's re-solves: a Relu drops the whole negative half, where the
    /// ReLU-aware targets leave the prediction free, so the pre-activation's spread says little of what passes (the
    /// Fashion-MNIST ResNet, test set −70 %: 92.00 % without, 91.86 % with); a hard gate passes all but its far tail (z ≤ −3).
    /// Nor for one operand of a sum that a later fit corrects: spreading it only moves it from the original operand, which that
    /// fit must then take back (the Fashion-MNIST ResNet's downsampling shortcuts: dev split −70 % 93.04 % with, 93.09 % without).
    /// </summary>
    private bool RestoresVariance => _options.RestoreVariance && Layout.FitsBias && Unit.Block == 1 && (!ReluAware || Unit.Chain!.Gate is not null)
        && !Unit.SumFittedLater;

    /// <summary>
    /// Whether XᵀX and XᵀY are formed from the stored rows when solving, in one call, instead of a chunk per batch: the
    /// rows are kept anyway, and per batch (3–7 images, 130–400 rows of ResNet-50's layer3 and layer4) each call re-read
    /// and re-wrote the whole float64 Gram (67–135 MB) for a partial panel of rows. Not for the lanes, which sum each
    /// chunk's products as they come.
    /// </summary>
    private bool ProductsAtSolve => _storedX is not null && !UsesLanes;

    /// <summary>
    /// Adds the sampled rows of node <paramref name="node"/> that fall in a batch of images starting at
    /// image <paramref name="firstImage"/>; <paramref name="activation"/> is that batch's feature value,
    /// <paramref name="skip"/> the pruned model's skip operand when the layer has a residual target (else empty).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Accumulate(int node, ReadOnlyMemory<float> activation, ReadOnlyMemory<float> skip, int firstImage, int images)
    {
        if (Targets is null) throw new InvalidOperationException($"targets of {Unit.Name} were not collected");
        _clock.Start();
        var equations = Equations();
        var rowsOf = Layout.Nodes[node];
        var samples = rowsOf.Samples;
        long first = (long)firstImage * rowsOf.RowsPerImage, end = first + (long)images * rowsOf.RowsPerImage;
        int lo = SortedRows.LowerBound(samples, first), hi = SortedRows.LowerBound(samples, end);
        int rowBase = Layout.RowOffset(node);
        int mg = Unit.OutputsPerGroup, n = Layout.FeaturesPerGroup;
        if (Unit.Chain is { HasSkip: true } && skip.IsEmpty) throw new InvalidOperationException($"skip operand of {Unit.Name} missing");
        int lanes = LaneProducts.Lanes, blocks = (Unit.Groups + lanes - 1) / lanes;
        for (int start = lo; start < hi; start += Chunk)
        {
            int count = Math.Min(Chunk, hi - start);
            for (int r = 0; r < count; r++) _rows[r] = samples[start + r] - first;
            if (rowsOf.Geometry is { } geometry) _patches.Set(_rows.AsSpan(0, count), geometry, rowsOf.Features);
            var chunk = new ChunkRows(node, rowBase + start, count);
            if (!UsesLanes)
            {
                var b = _buffers[0];
                for (int g = 0; g < Unit.Groups; g++)
                {
                    ReadGroup(g, chunk, activation.Span, skip.Span, b);
                    for (int t = 0; t < mg; t++) Narrow(b.Y.AsSpan(t * Chunk, count), b.Ys.AsSpan(t * Chunk, count));
                    equations[g].AddTargets(b.Y, count, Chunk);
                    // Products once per stored layer (ProductsAtSolve), or per few batches' worth of rows (PendingRows).
                    _pending?[g].Add(b.Xs, b.Ys, count, Chunk, equations[g]);
                    StoreGroup(g, chunk, skip.Span, b);
                }
                continue;
            }
            int workers = Math.Min(_buffers.Length, blocks);
            void Work(int w)
            {
                var b = _buffers[w];
                for (int k = blocks * w / workers, last = blocks * (w + 1) / workers; k < last; k++)
                {
                    int g0 = k * lanes, here = Math.Min(lanes, Unit.Groups - g0);
                    if (rowsOf.Geometry is { } convGeometry)
                    {
                        // Patches straight into the lane layout; only the targets go through the group's own buffer. Rows kept
                        // for the re-solves are copied out of the lanes: read a group at a time (ConvPatches, then Load), the
                        // same rows cost PP-OCRv4 rec's hard-gate-aware depthwise convs ~0.8 s more of accumulation.
                        RowReader.ConvPatchesLanes(activation.Span, rowsOf.Features, convGeometry, g0, Unit.InputsPerGroup, here, _patches, b.Z, Chunk, lanes);
                        if (Layout.FitsBias) b.Z.AsSpan((n - 1) * Chunk * lanes, count * lanes).Fill(1);
                        StoreLaneFeatures(g0, here, chunk, b.Z);
                        for (int l = 0; l < here; l++)
                        {
                            ReadTargets(g0 + l, chunk, skip.Span, b);
                            equations[g0 + l].AddTargets(b.Y, count, Chunk);
                            LaneProducts.LoadTargets(b.Z, l, n, b.Y, mg, count, Chunk);
                            StoreTargets(g0 + l, chunk, skip.Span, b);
                        }
                    }
                    else
                        for (int l = 0; l < here; l++)
                        {
                            ReadGroup(g0 + l, chunk, activation.Span, skip.Span, b);
                            equations[g0 + l].AddTargets(b.Y, count, Chunk);
                            LaneProducts.Load(b.Z, l, b.X, n, b.Y, mg, count, Chunk);
                            StoreGroup(g0 + l, chunk, skip.Span, b);
                        }
                    LaneProducts.Add(equations.AsSpan(g0, here), b.Z, count, Chunk);
                }
            }
            if (workers > 1 && (long)count * Unit.Groups * (n + mg) * (n + mg) >= ParallelWork) Parallel.For(0, workers, Work);
            else for (int w = 0; w < workers; w++) Work(w);
        }
        _clock.Stop();
    }

    /// <summary>Products (rows × groups × width²) below which a chunk's lane blocks are not worth spreading over the cores.</summary>
    private const long ParallelWork = 1L << 20;

    /// <summary>A chunk of sampled rows of one node: their positions in the batch are in <see cref="_rows"/>[..Count], the first is row <see cref="At"/> of the layer.</summary>
    private readonly record struct ChunkRows(int Node, int At, int Count);

    /// <summary>
    /// Reads group <paramref name="g"/>'s features (and bias column) and targets (less the pruned skip) of a chunk into
    /// <paramref name="b"/>: the features as float32 for the products (they are float32 activations: the float64 copy the
    /// products were narrowed from held the same values), as float64 for the lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ReadGroup(int g, ChunkRows chunk, ReadOnlySpan<float> activation, ReadOnlySpan<float> skip, ChunkBuffers b)
    {
        if (b.Xs.Length > 0) ReadFeatures(g, chunk, activation, b.Xs);
        else ReadFeatures(g, chunk, activation, b.X);
        ReadTargets(g, chunk, skip, b);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ReadFeatures<T>(int g, ChunkRows chunk, ReadOnlySpan<float> activation, T[] x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rowsOf = Layout.Nodes[chunk.Node];
        var rows = _rows.AsSpan(0, chunk.Count);
        int weights = Layout.FeaturesPerGroup - (Layout.FitsBias ? 1 : 0);
        if (rowsOf.Geometry is { } geometry)
            RowReader.ConvPatches(activation, rowsOf.Features, geometry, g * Unit.InputsPerGroup, Unit.InputsPerGroup, _patches, x, Chunk);
        else
            RowReader.Channels(activation, rowsOf.Features, 0, Unit.InputsPerGroup, rows, x, Chunk);
        if (Layout.FitsBias) x.AsSpan(weights * Chunk, chunk.Count).Fill(T.One);
    }

    /// <summary>Reads group <paramref name="g"/>'s targets of a chunk (less the pruned skip) into <paramref name="b"/>.</summary>
    private void ReadTargets(int g, ChunkRows chunk, ReadOnlySpan<float> skip, ChunkBuffers b)
    {
        int mg = Unit.OutputsPerGroup;
        RowReader.Targets(Targets, Unit.Outputs, chunk.At, chunk.Count, g * mg, mg, b.Y, Chunk);
        if (Unit.Chain is { HasSkip: true } chain)
            RowReader.SubtractSkip(skip, Layout.Nodes[chunk.Node].Targets with { Channels = Unit.Outputs }, _rows.AsSpan(0, chunk.Count), g * mg, mg, chain.InverseScale, b.Y, Chunk);
    }

    /// <summary>Keeps group <paramref name="g"/>'s chunk (features, targets and the chain's offsets) for the ReLU-aware re-solves, if they run.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void StoreGroup(int g, ChunkRows chunk, ReadOnlySpan<float> skip, ChunkBuffers b)
    {
        if (_storedX is null) return;
        int n = Layout.FeaturesPerGroup, count = chunk.Count;
        long rowsTotal = Layout.Rows, at = chunk.At;
        // The products' float32 copies are these rows narrowed already (the lanes have none).
        bool narrowed = b.Xs.Length > 0;
        for (int f = 0; f < n; f++)
            if (narrowed) b.Xs.AsSpan(f * Chunk, count).CopyTo(_storedX[g].AsSpan((int)(f * rowsTotal + at), count));
            else Narrow(b.X.AsSpan(f * Chunk, count), _storedX[g].AsSpan((int)(f * rowsTotal + at), count));
        StoreTargets(g, chunk, skip, b);
    }

    /// <summary>The features part of <see cref="StoreGroup"/> for groups [g0, g0 + groups) of a chunk in the lane layout (<see cref="LaneProducts.Load"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void StoreLaneFeatures(int g0, int groups, ChunkRows chunk, double[] z)
    {
        if (_storedX is null) return;
        int n = Layout.FeaturesPerGroup, count = chunk.Count, lanes = LaneProducts.Lanes;
        long rowsTotal = Layout.Rows, at = chunk.At;
        for (int f = 0; f < n; f++)
            for (int l = 0; l < groups; l++)
            {
                var stored = _storedX[g0 + l].AsSpan((int)(f * rowsTotal + at), count);
                var lane = z.AsSpan(f * Chunk * lanes + l);
                for (int r = 0; r < count; r++) stored[r] = (float)lane[r * lanes];
            }
    }

    /// <summary>The targets and the chain's offsets part of <see cref="StoreGroup"/>, from the targets in <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void StoreTargets(int g, ChunkRows chunk, ReadOnlySpan<float> skip, ChunkBuffers b)
    {
        if (_storedX is null) return;
        int mg = Unit.OutputsPerGroup, count = chunk.Count;
        var rows = _rows.AsSpan(0, count);
        var skipLayout = Layout.Nodes[chunk.Node].Targets with { Channels = Unit.Outputs };
        var chain = Unit.Chain!;
        long rowsTotal = Layout.Rows, at = chunk.At;
        bool narrowed = b.Ys.Length > 0;
        Span<long> starts = count <= 1024 ? stackalloc long[count] : new long[count];
        long step = skip.IsEmpty || _storedC is null ? 0 : skipLayout.ChannelStarts(rows, starts);
        for (int t = 0; t < mg; t++)
        {
            if (narrowed) b.Ys.AsSpan(t * Chunk, count).CopyTo(_storedT![g].AsSpan((int)(t * rowsTotal + at), count));
            else Narrow(b.Y.AsSpan(t * Chunk, count), _storedT![g].AsSpan((int)(t * rowsTotal + at), count));
            if (_storedC is null) continue;
            var c = _storedC[g].AsSpan((int)(t * rowsTotal + at), count);
            c.Fill((float)chain.Offset[g * mg + t]);
            if (skip.IsEmpty) continue;
            if (step == 0)
                for (int r = 0; r < count; r++) c[r] += skip[(int)skipLayout.Index(rows[r], g * mg + t)];
            else
            {
                long offset = (long)(g * mg + t) * step;
                for (int r = 0; r < count; r++) c[r] += skip[(int)(starts[r] + offset)];
            }
        }
    }

    /// <summary>Solves every group, writes the weights into <paramref name="model"/> and says how the layer's error changed.</summary>
    public LayerReconstruction Solve(OnnxModel model)
    {
        _clock.Start();
        Targets = null;
        var equations = Equations();
        var before = LayerWeights.Read(Unit, Layout, model.Graph);
        var after = new double[Unit.Groups][];
        // Per group: the error before and after and the targets' total over the rows the error before is measured on, then
        // the error after and the total over all rows (the same rows unless the error before is estimated, see ReluAware; where
        // no ReLU-aware re-solve ran, the error after is estimated on the same rows too).
        var errors = new (double Before, double After, double Total, double AfterAll, double TotalAll)[Unit.Groups];
        // Many small groups (a depthwise conv) are solved side by side, each on one core: splitting every small
        // re-solve over the cores cost more in hand-overs than it saved. The sums are the same either way.
        bool groupsInParallel = Unit.Groups > 1;
        void SolveGroup(int g)
        {
            var eq = equations[g];
            if (ProductsAtSolve)
            {
                // Every position of a stride-1 conv's map is stored: its Gram from the map's shifted products (a quarter of
                // the patches' multiply-adds on ResNet-50's layer4 3×3 convs; same sums, other rounding).
                bool shifted = ShiftedGram.Applies(Layout, Unit.Groups, Unit.InputsPerGroup);
                if (shifted) ShiftedGram.Accumulate(_storedX![g], Layout.Rows, Layout.Nodes[0].Geometry!.Value, Unit.InputsPerGroup, Layout.FitsBias, eq.Gram, parallel: true);
                eq.AddProducts(_storedX![g], _storedT![g], Layout.Rows, Layout.Rows, parallel: !groupsInParallel, gram: !shifted);
            }
            _pending?[g].Flush(eq);
            var solver = RidgeSolver.Factor(eq, _options.Ridge, Layout.FitsBias) ?? throw new LayerSkippedException("the normal equations could not be solved");
            var prior = _options.ShrinkTowardPruned ? before[g] : null;
            after[g] = solver.Solve(eq.Cross, eq.Targets, prior) ?? throw new LayerSkippedException("the least-squares solution is not finite");
            if (Unit.Block > 1 && Layout.FitsBias) ShareBias(after[g]);
            int spread = RestoresVariance ? VarianceRestoration.Apply(eq, solver, after[g], prior) : 0;
            if (ReluAware)
            {
                // The sliced weights' error is one more product over the rows that only the comparison below and the report
                // use: on wide layers it is estimated on every EstimateStride-th tile, compared with the error after on the same tiles.
                var (b, tb) = Sum(ReluTiles(g, before[g], Estimated, !groupsInParallel), Estimated);
                var (theta, tiles) = ReluAwareSolve(g, eq, solver, prior, after[g], ref spread, !groupsInParallel);
                after[g] = theta;
                var (a, _) = Sum(tiles, Estimated);
                var (all, tAll) = Sum(tiles, _ => true);
                errors[g] = (b, a, tb, all, tAll);
            }
            else
            {
                eq.Symmetrize();
                double b = eq.SquaredError(before[g]), a = eq.SquaredError(after[g]), t = eq.TotalTargetSquares;
                errors[g] = (b, a, t, a, t);
            }
            if (spread > 0) Interlocked.Add(ref _restored, spread);
        }
        if (groupsInParallel)
        {
            try { Parallel.For(0, Unit.Groups, SolveGroup); }
            catch (AggregateException e) { ExceptionDispatchInfo.Capture(e.InnerExceptions.FirstOrDefault(x => x is LayerSkippedException) ?? e.InnerExceptions[0]).Throw(); }
        }
        else SolveGroup(0);
        double errorBefore = 0, errorAfter = 0, total = 0, errorAfterAll = 0, totalAll = 0;
        foreach (var (b, a, t, aAll, tAll) in errors)
        {
            errorBefore += b;
            errorAfter += a;
            total += t;
            errorAfterAll += aAll;
            totalAll += tAll;
        }
        errorBefore = total > 0 ? Math.Sqrt(errorBefore / total) : 0;
        errorAfter = total > 0 ? Math.Sqrt(errorAfter / total) : 0;
        // The fit minimises the regularised error; if the sliced weights already do better on the
        // unregularised one (ridge too strong, nothing to recover), keep them.
        bool improved = errorAfter < errorBefore;
        errorAfter = totalAll > 0 ? Math.Sqrt(errorAfterAll / totalAll) : 0;
        if (improved) LayerWeights.Write(Unit, Layout, after, model);
        _equations = null;
        _storedX = _storedT = _storedC = null;
        _pending = null;
        _buffers = [];
        _solved = true;
        _clock.Stop();
        return new LayerReconstruction(Unit.Name, Unit.OpType, Layout.Rows, Layout.FeaturesPerGroup, Unit.Outputs,
            errorBefore, improved ? errorAfter : errorBefore, _clock.Elapsed.TotalSeconds,
            improved ? null : "the fit did not lower the error; weights left as sliced") { ReluSolves = _reluSolves, VarianceRestored = improved ? _restored : 0 };
    }

    /// <summary>
    /// The ReLU-aware re-solves from the plain solution <paramref name="theta"/>: each sweep over the stored rows predicts
    /// with the current weights, sums their ReLU error and sets the ReLU-aware targets; a re-solve on XᵀT' follows unless
    /// the last one changed Θ by less than <see cref="ReconstructionOptions.ReluTolerance"/>, all
    /// <see cref="ReconstructionOptions.ReluIterations"/> are done, or the sweep's error fell by less than
    /// <see cref="ReconstructionOptions.ReluErrorTolerance"/> of the previous one. The first re-solve runs only if it would
    /// lower a sample of the outputs' error by at least half that (<see cref="SampledGain"/>). The final sweep's error is the
    /// fit's error after, so no further pass over the rows is needed. Each re-solve's spread is restored before its sweep
    /// (<see cref="RestoresVariance"/>), so the sweeps measure, and retarget from, the weights that are kept.
    /// </summary>
    private (double[] Theta, (double Error, double Total)[] Tiles) ReluAwareSolve(int g, NormalEquations eq, RidgeSolver solver, double[]? prior, double[] theta,
        ref int spread, bool parallel)
    {
        int m = eq.Targets;
        var targets = LargeArrays.Zeroed<float>((long)Unit.OutputsPerGroup * Layout.Rows);
        double previousError = double.PositiveInfinity;
        bool settled = false;
        for (int it = 0; ; it++)
        {
            bool last = settled || it == _options.ReluIterations;
            // The first re-solve is not worth its products (XᵀT', the solve, the sweep after it: as much as the plain fit's
            // cross product and solve again) when, on a sample of the outputs, it would lower their error by less than half
            // the tolerance (half: the sample's gain is an estimate of the layer's). It is weighed before the sweep that sets
            // every target; when it is not run, the plain weights' error after is estimated on the tiles the error before is
            // (a quarter of a sweep instead of a whole one).
            if (it == 0 && !last && _options.ReluErrorTolerance > 0 && SampledGain(g, solver, prior, theta, parallel) < _options.ReluErrorTolerance / 2)
                return (theta, ReluTiles(g, theta, Estimated, parallel));
            var tiles = ReluSweep(g, theta, targets, retarget: !last, parallel);
            double error = Sum(tiles, _ => true).Error;
            if (last) return (theta, tiles);
            // The last re-solve gained too little: more are not worth their products (the weights stay, as when they settle).
            if (_options.ReluErrorTolerance > 0 && error > previousError * (1 - _options.ReluErrorTolerance)) return (theta, tiles);
            previousError = error;
            var cross = LargeArrays.Zeroed<double>((long)Layout.FeaturesPerGroup * m);
            BlockedProducts.Accumulate(_storedX![g], Layout.FeaturesPerGroup, targets, m, Layout.Rows, Layout.Rows, cross, m, parallel);
            var next = solver.Solve(cross, m, prior);
            if (next is null) next = theta;
            else if (RestoresVariance) spread = VarianceRestoration.Apply(eq, solver, next, prior, cross);
            Interlocked.Increment(ref _reluSolves);
            double change = RelativeChange(theta, next);
            if (Unit.Block > 1 && Layout.FitsBias) ShareBias(next);
            theta = next;
            settled = change < _options.ReluTolerance;
        }
    }

    /// <summary>
    /// The fraction by which the first ReLU-aware re-solve would lower the ReLU error of a sample of the outputs (every
    /// <see cref="SampleStride"/>-th) from the plain weights <paramref name="theta"/>: a sweep of the sample's predictions
    /// sets its ReLU-aware targets and sums its error, the re-solve's weights of the sample follow, and a second sweep sums
    /// their error. Null where no sample is taken (too few outputs, or outputs that share a bias). An output's re-solved
    /// weights depend on its own targets alone (its column of XᵀT', its right-hand side), so the sample's weights are the
    /// re-solve's and only a fraction of its products is paid for. ResNet-50 (256 images): the sampled gain of a first
    /// re-solve 0.0–2.1 %, the whole layer's 0.1–1.7 % (e.g. 1.02 / 1.21, 1.20 / 0.98, 2.05 / 1.52, 1.43 / 1.47 %).
    /// </summary>
    private double? SampledGain(int g, RidgeSolver solver, double[]? prior, double[] theta, bool parallel)
    {
        int n = Layout.FeaturesPerGroup, m = Unit.OutputsPerGroup, rows = Layout.Rows;
        // A multiple of four outputs: the predictions' register blocks (the outputs past them go one at a time).
        int k = m / SampleStride / 4 * 4;
        if (k == 0 || Unit.Block > 1) return null;
        var w0 = Narrow(Columns(theta, n, m, k));
        var targets = new float[(long)k * rows];
        var before = new double[Tiles];
        ForEachTile(parallel, () => new float[k * Tile], (tile, p) =>
        {
            int r0 = tile * Tile, count = Math.Min(Tile, rows - r0);
            BlockedProducts.Project(_storedX![g], n, rows, r0, count, w0, k, p, Tile);
            double e = 0, total = 0;
            for (int s = 0; s < k; s++)
            {
                var ps = p.AsSpan(s * Tile, count);
                OutputError(g, s * SampleStride, r0, count, ps, ref e, ref total);
                RetargetOutput(g, s * SampleStride, r0, count, ps);
                ps.CopyTo(targets.AsSpan((int)((long)s * rows + r0), count));
            }
            before[tile] = e;
        });
        var cross = new double[(long)n * k];
        BlockedProducts.Accumulate(_storedX![g], n, targets, k, rows, rows, cross, k, parallel);
        if (solver.Solve(cross, k, prior is null ? null : Columns(prior, n, m, k)) is not { } next) return null;
        var w1 = Narrow(next);
        var after = new double[Tiles];
        ForEachTile(parallel, () => new float[k * Tile], (tile, p) =>
        {
            int r0 = tile * Tile, count = Math.Min(Tile, rows - r0);
            BlockedProducts.Project(_storedX![g], n, rows, r0, count, w1, k, p, Tile);
            double e = 0, total = 0;
            for (int s = 0; s < k; s++) OutputError(g, s * SampleStride, r0, count, p.AsSpan(s * Tile, count), ref e, ref total);
            after[tile] = e;
        });
        double b = before.Sum(), a = after.Sum();
        return b > 0 ? (b - a) / b : 0;
    }

    /// <summary>Outputs between two sampled ones in <see cref="SampledGain"/>.</summary>
    private const int SampleStride = 8;

    /// <summary>Columns 0, <see cref="SampleStride"/>, 2·<see cref="SampleStride"/>, … (<paramref name="k"/> of them) of an n×m row-major matrix.</summary>
    private static double[] Columns(double[] matrix, int n, int m, int k)
    {
        var result = new double[(long)n * k];
        for (int f = 0; f < n; f++)
            for (int s = 0; s < k; s++) result[(long)f * k + s] = matrix[(long)f * m + s * SampleStride];
        return result;
    }

    /// <summary>Gives each channel's k² outputs the one bias the layer can store (see <see cref="LayerWeights.SharedBias"/>), so the error after is the stored model's.</summary>
    private void ShareBias(double[] theta)
    {
        int m = Unit.OutputsPerGroup, row = (Layout.FeaturesPerGroup - 1) * m;
        var shared = LayerWeights.SharedBias(theta.AsSpan(row, m), Unit.Block);
        for (int t = 0; t < m; t++) theta[row + t] = shared[t / Unit.Block];
    }

    /// <summary>‖b − a‖ / ‖b‖ (Frobenius); 0 when b = a, infinite when b alone is zero.</summary>
    private static double RelativeChange(double[] a, double[] b)
    {
        double change = 0, norm = 0;
        for (int i = 0; i < b.Length; i++)
        {
            double d = b[i] - a[i];
            change += d * d;
            norm += b[i] * b[i];
        }
        return change == 0 ? 0 : norm > 0 ? Math.Sqrt(change / norm) : double.PositiveInfinity;
    }

    private const int Tile = 256;

    private static void Narrow(ReadOnlySpan<double> source, Span<float> destination) => TensorPrimitives.ConvertTruncating(source, destination);

    private static float[] Narrow(double[] source)
    {
        var result = new float[source.Length];
        Narrow(source, result);
        return result;
    }

    /// <summary>
    /// One sweep of the ReLU-aware re-solves over group <paramref name="g"/>'s stored rows: predictions XΘ tile by tile, their
    /// ReLU error Σ (relu(a·XΘ + c) − relu(a·τ + c))² (per-tile sums added in order, as <see cref="ReluTiles"/>), and with
    /// <paramref name="retarget"/> the ReLU-aware targets into <paramref name="targets"/> (output-major): where the original
    /// pre-Relu value z = a·τ + c is negative, an entry whose prediction is already ≤ 0 after the chain is exact (target =
    /// prediction), and one predicted positive is pulled to z = 0; elsewhere the target stays τ. Each tile's result goes to
    /// its own place, so the weights are reproducible bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private (double Error, double Total)[] ReluSweep(int g, double[] theta, float[] targets, bool retarget, bool parallel)
    {
        int mg = Unit.OutputsPerGroup, rows = Layout.Rows;
        var errors = new (double, double)[Tiles];
        var w = Narrow(theta);
        ForEachTile(parallel, () => new float[mg * Tile], (tile, p) =>
        {
            int r0 = tile * Tile, count = Math.Min(Tile, rows - r0);
            PredictTile(g, w, r0, count, p);
            errors[tile] = TileError(g, r0, count, p);
            if (!retarget) return;
            RetargetTile(g, r0, count, p);
            for (int o = 0; o < mg; o++) Array.Copy(p, o * Tile, targets, (long)o * rows + r0, count);
        });
        return errors;
    }

    /// <summary>Runs <paramref name="body"/> on every tile, over the cores or in order; each tile's result goes to its own place, so either way gives the same.</summary>
    private void ForEachTile(bool parallel, Func<float[]> scratch, Action<int, float[]> body)
    {
        if (parallel)
            Parallel.For(0, Tiles, scratch, (tile, _, p) => { body(tile, p); return p; }, _ => { });
        else
        {
            var p = scratch();
            for (int tile = 0; tile < Tiles; tile++) body(tile, p);
        }
    }

    private int Tiles => (Layout.Rows + Tile - 1) / Tile;

    /// <summary>Predictions XΘ of group <paramref name="g"/> for stored rows [r0, r0+count), output-major with stride <see cref="Tile"/>.</summary>
    private void PredictTile(int g, float[] theta, int r0, int count, float[] p) =>
        BlockedProducts.Project(_storedX![g], Layout.FeaturesPerGroup, Layout.Rows, r0, count, theta, Unit.OutputsPerGroup, p, Tile);

    /// <summary>Replaces a tile's predictions by the ReLU-aware targets (see <see cref="ReluSweep"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RetargetTile(int g, int r0, int count, float[] p)
    {
        for (int o = 0; o < Unit.OutputsPerGroup; o++) RetargetOutput(g, o, r0, count, p.AsSpan(o * Tile, count));
    }

    /// <summary>Replaces output <paramref name="o"/>'s predictions <paramref name="p"/> for stored rows [r0, r0 + count) by its ReLU-aware targets.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RetargetOutput(int g, int o, int r0, int count, Span<float> p)
    {
        int mg = Unit.OutputsPerGroup;
        var chain = Unit.Chain!;
        double a = chain.Scale[g * mg + o], inv = chain.InverseScale[g * mg + o];
        int at = (int)((long)o * Layout.Rows + r0);
        if (inv == 0) { _storedT![g].AsSpan(at, count).CopyTo(p); return; }
        ReluEntries.Retarget(_storedT![g].AsSpan(at, count), _storedC![g].AsSpan(at, count), p, a, inv, chain.Floor);
    }

    /// <summary>Σ (relu(a·p + c) − relu(a·τ + c))² and Σ relu(a·τ + c)² over a tile of group <paramref name="g"/>'s stored rows, predictions p output-major (stride <see cref="Tile"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private (double Error, double Total) TileError(int g, int r0, int count, float[] p)
    {
        double e = 0, z2 = 0;
        int mg = Unit.OutputsPerGroup;
        for (int o = 0; o < mg; o++) OutputError(g, o, r0, count, p.AsSpan(o * Tile, count), ref e, ref z2);
        return (e, z2);
    }

    /// <summary>Adds output <paramref name="o"/>'s Σ (relu(a·p + c) − relu(a·τ + c))² over stored rows [r0, r0 + count) to <paramref name="e"/>, Σ relu(a·τ + c)² to <paramref name="z2"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void OutputError(int g, int o, int r0, int count, ReadOnlySpan<float> p, ref double e, ref double z2)
    {
        int mg = Unit.OutputsPerGroup, rows = Layout.Rows;
        var t = _storedT![g];
        var c = _storedC![g];
        var chain = Unit.Chain!;
        double a = chain.Scale[g * mg + o];
        int at = (int)((long)o * rows + r0);
        if (chain.Gate is { } gate) ReluEntries.GateError(t.AsSpan(at, count), c.AsSpan(at, count), p, a, gate, ref e, ref z2);
        else ReluEntries.Error(t.AsSpan(at, count), c.AsSpan(at, count), p, a, ref e, ref z2);
    }

    /// <summary>Per tile of group <paramref name="g"/>'s stored rows, Σ (relu(a·XΘ + c) − relu(a·τ + c))² and Σ relu(a·τ + c)², on the tiles <paramref name="measured"/> picks (zero elsewhere).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private (double Error, double Total)[] ReluTiles(int g, double[] theta, Func<int, bool> measured, bool parallel)
    {
        int mg = Unit.OutputsPerGroup, rows = Layout.Rows;
        var errors = new (double, double)[Tiles];
        var w = Narrow(theta);
        ForEachTile(parallel, () => new float[mg * Tile], (tile, p) =>
        {
            if (!measured(tile)) return;
            int r0 = tile * Tile, count = Math.Min(Tile, rows - r0);
            PredictTile(g, w, r0, count, p);
            errors[tile] = TileError(g, r0, count, p);
        });
        return errors;
    }

    /// <summary>The per-tile sums of the tiles <paramref name="measured"/> picks, added in tile order.</summary>
    private static (double Error, double Total) Sum((double Error, double Total)[] tiles, Func<int, bool> measured)
    {
        double e = 0, t = 0;
        for (int tile = 0; tile < tiles.Length; tile++)
            if (measured(tile))
            {
                e += tiles[tile].Error;
                t += tiles[tile].Total;
            }
        return (e, t);
    }

    /// <summary>
    /// The tiles the sliced weights' ReLU error is measured on: every <see cref="EstimateStride"/>-th when the layer has at
    /// least <see cref="EstimateFrom"/> tiles, else all of them. Tiles are runs of consecutive sampled rows, so every
    /// fourth tile is a quarter of the images.
    /// </summary>
    private bool Estimated(int tile) => Tiles < EstimateFrom || tile % EstimateStride == 0;

    private const int EstimateStride = 4;

    private const int EstimateFrom = 16;
}
