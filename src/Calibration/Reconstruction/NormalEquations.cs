using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Calibration;

/// <summary>
/// Running sums of a least-squares problem in float64: XᵀX (n×n, lower triangle), XᵀY (n×m) and the
/// per-column ‖y‖². Rows arrive in chunks stored feature-major (one contiguous run of rows per feature),
/// so every sum is a vectorised dot product and the raw rows never need to be kept.
/// </summary>
internal sealed class NormalEquations
{
    public NormalEquations(int features, int targets)
    {
        if (features < 1) throw new ArgumentException($"features must be at least 1, got {features}");
        if (targets < 1) throw new ArgumentException($"targets must be at least 1, got {targets}");
        Features = features;
        Targets = targets;
        Gram = LargeArrays.Zeroed<double>((long)features * features);
        Cross = LargeArrays.Zeroed<double>((long)features * targets);
        TargetSquares = new double[targets];
    }

    public int Features { get; }
    public int Targets { get; }
    public long Rows { get; private set; }

    /// <summary>XᵀX, row-major; only the lower triangle is filled until <see cref="Symmetrize"/>.</summary>
    public double[] Gram { get; }

    /// <summary>XᵀY, row-major n×m.</summary>
    public double[] Cross { get; }

    public double[] TargetSquares { get; }

    /// <summary>
    /// Adds <paramref name="rows"/> rows: feature f of row r at <c>x[f·stride + r]</c>, target t of row r at
    /// <c>y[t·stride + r]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Add(double[] x, double[] y, int rows, int stride)
    {
        if (rows < 0 || rows > stride) throw new ArgumentException($"rows must lie in [0, {stride}], got {rows}");
        if (x.Length < (long)Features * stride || y.Length < (long)Targets * stride)
            throw new ArgumentException($"chunk buffers are too small for {Features} features, {Targets} targets and stride {stride}");
        if (rows == 0) return;
        // XᵀX and XᵀY are independent sums: on two cores at once where a chunk is worth it. A conv of ~90 features
        // and outputs is one packed block of each, which BlockedProducts runs on one core (PP-OCRv4 det's 1×1 convs:
        // ~1.1 CPU s of its passes). Each sum is formed as on one core, so the results are the same bits.
        void GramPart() => BlockedProducts.Accumulate(x, Features, x, Features, rows, stride, Gram, Features, lowerOnly: true);
        void CrossPart() => BlockedProducts.Accumulate(x, Features, y, Targets, rows, stride, Cross, Targets, lowerOnly: false);
        if (Environment.ProcessorCount > 1 && (long)Features * (Features + Targets) * rows >= ParallelWork) Parallel.Invoke(GramPart, CrossPart);
        else
        {
            GramPart();
            CrossPart();
        }
        AddTargets(y, rows, stride);
    }

    /// <summary>
    /// <see cref="Add"/> from float32 copies of the rows (<paramref name="xs"/>, <paramref name="ys"/>, same layout) for the
    /// products: summed in float32 over at most <see cref="BlockedProducts.Flush"/> rows, then in float64
    /// (<see cref="BlockedProducts"/>); twice the lanes of the float64 kernel. ‖y‖² stays float64 from <paramref name="y"/>.
    /// The rows are float32 activations to begin with; what changes is the rounding of partial sums (1e-7 of
    /// √(GᵢᵢGⱼⱼ) on PP-OCRv4 rec's widest fit, against a ridge of 1e-2 of the mean diagonal). PP-OCRv4 rec's widest Gram,
    /// 8,960 rows × 2,617 features: 2.2 → 1.2–1.3 CPU s.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Add(float[] xs, float[] ys, double[] y, int rows, int stride)
    {
        if (rows < 0 || rows > stride) throw new ArgumentException($"rows must lie in [0, {stride}], got {rows}");
        if (xs.Length < (long)Features * stride || ys.Length < (long)Targets * stride)
            throw new ArgumentException($"chunk buffers are too small for {Features} features, {Targets} targets and stride {stride}");
        if (rows == 0) return;
        // Small products on the calling thread: a chunk of a 10-feature layer is not worth a hand-over.
        AddProducts(xs, ys, rows, stride, ProductsInParallel(rows));
        AddTargets(y, rows, stride);
    }

    /// <summary>
    /// The products of <see cref="Add(float[], float[], double[], int, int)"/> alone, XᵀX and XᵀY from float32 rows (the
    /// rows' ‖y‖² and count go through <see cref="AddTargets"/>): for rows kept whole, whose products are formed in one call
    /// once they are all in (see <see cref="LayerFit"/>). <paramref name="parallel"/>: the two products side by side, each
    /// over the cores; the same sums either way. Without <paramref name="gram"/>, XᵀY alone (XᵀX formed another way, see
    /// <see cref="ShiftedGram"/>).
    /// </summary>
    public void AddProducts(float[] xs, float[] ys, int rows, int stride, bool parallel, bool gram = true)
    {
        if (rows < 0 || rows > stride) throw new ArgumentException($"rows must lie in [0, {stride}], got {rows}");
        if (xs.Length < (long)Features * stride || ys.Length < (long)Targets * stride)
            throw new ArgumentException($"row buffers are too small for {Features} features, {Targets} targets and stride {stride}");
        if (rows == 0) return;
        void GramPart() => BlockedProducts.Accumulate(xs, Features, xs, Features, rows, stride, Gram, Features, parallel, lowerOnly: true);
        void CrossPart() => BlockedProducts.Accumulate(xs, Features, ys, Targets, rows, stride, Cross, Targets, parallel);
        if (!gram) CrossPart();
        else if (parallel) Parallel.Invoke(GramPart, CrossPart);
        else
        {
            GramPart();
            CrossPart();
        }
    }

    /// <summary>Multiply-adds in a chunk's two products from which <see cref="Add"/> runs them side by side.</summary>
    private const long ParallelWork = 1L << 20;

    /// <summary>Whether the products of <paramref name="rows"/> rows are worth spreading over the cores (the same sums either way).</summary>
    public bool ProductsInParallel(int rows) => Environment.ProcessorCount > 1 && (long)Features * (Features + Targets) * rows >= ParallelWork;

    /// <summary>
    /// The part of <see cref="Add"/> besides the products: ‖y‖² per target and the row count (<see cref="LaneProducts"/>
    /// adds the products of several equations at once).
    /// </summary>
    public void AddTargets(double[] y, int rows, int stride)
    {
        if (rows < 0 || rows > stride) throw new ArgumentException($"rows must lie in [0, {stride}], got {rows}");
        if (y.Length < (long)Targets * stride) throw new ArgumentException($"target buffer is too small for {Targets} targets and stride {stride}");
        for (int t = 0; t < Targets; t++)
        {
            var yt = new ReadOnlySpan<double>(y, t * stride, rows);
            TargetSquares[t] += TensorPrimitives.Dot(yt, yt);
        }
        Rows += rows;
    }

    /// <summary>Copies the lower triangle of XᵀX onto the upper one.</summary>
    public void Symmetrize()
    {
        int n = Features;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) Gram[j * n + i] = Gram[i * n + j];
    }

    /// <summary>‖XΘ − Y‖² summed over the targets, from the sums alone: Σ_t θ_tᵀGθ_t − 2θ_tᵀc_t + ‖y_t‖². Needs <see cref="Symmetrize"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public double SquaredError(double[] theta)
    {
        int n = Features, m = Targets;
        if (theta.Length < (long)n * m) throw new ArgumentException($"theta holds {theta.Length} values, {n}×{m} needs {(long)n * m}");
        // G·Θ a block of rows at a time through the packed GEMM (a classifier's 2,033 × 1,000 is 4 G multiply-adds, twice
        // per fit; one scaled row added at a time it ran at ~2 G per CPU s, memory-bound), the blocks over the cores. Each
        // row's term is kept apart and the terms summed in row order, and a block's products do not depend on which core
        // forms them, so the total is the same bits however the blocks are scheduled.
        var terms = new double[n];
        int blocks = (n + ErrorRows - 1) / ErrorRows;
        void Rows(int block)
        {
            int i0 = block * ErrorRows, rows = Math.Min(ErrorRows, n - i0);
            var gTheta = new double[(long)rows * m];
            Gemm.Multiply(rows, m, n, 1.0, new ReadOnlySpan<double>(Gram, i0 * n, rows * n), n, false, theta, m, false, gTheta, m);
            for (int r = 0; r < rows; r++)
            {
                var ti = new ReadOnlySpan<double>(theta, (i0 + r) * m, m);
                terms[i0 + r] = TensorPrimitives.Dot(ti, new ReadOnlySpan<double>(gTheta, r * m, m)) - 2 * TensorPrimitives.Dot(ti, new ReadOnlySpan<double>(Cross, (i0 + r) * m, m));
            }
        }
        if (blocks > 1 && (long)n * n * m >= 1L << 24) Parallel.For(0, blocks, Rows);
        else for (int b = 0; b < blocks; b++) Rows(b);
        double total = 0;
        foreach (double term in terms) total += term;
        foreach (double s in TargetSquares) total += s;
        return Math.Max(total, 0);
    }

    /// <summary>Rows of G·Θ per task in <see cref="SquaredError"/>: a multiple of the GEMM's register rows, large enough that packing Θ again per task costs little.</summary>
    private const int ErrorRows = 96;

    public double TotalTargetSquares => TargetSquares.Sum();

    /// <summary>Relative RMS error ‖XΘ − Y‖ / ‖Y‖ (0 when the targets are all zero).</summary>
    public double RelativeError(double[] theta)
    {
        double yy = TotalTargetSquares;
        return yy > 0 ? Math.Sqrt(SquaredError(theta) / yy) : 0;
    }
}
