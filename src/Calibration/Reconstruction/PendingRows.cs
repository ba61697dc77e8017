using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Calibration;

/// <summary>
/// One group's rows waiting for their products XᵀX and XᵀY, for a fit that keeps no rows (no ReLU-aware re-solves): the
/// chunks of each batch are copied here and the products formed once per <see cref="Capacity"/> rows. Why: a product call
/// re-reads and re-writes the whole float64 Gram, and a batch of a few images is only a few hundred rows of a wide fit
/// (ResNet-50's fc: 2,033 features, a 33 MB Gram per call). The capacity is a whole number of the products' float32
/// flushes (<see cref="BlockedProducts.Flush"/> rows, counted from each call's first row), so the sums are those of one
/// call over all the layer's rows, in order, however the batches split them.
/// </summary>
internal sealed class PendingRows
{
    private readonly float[] _x, _y;
    private readonly int _features, _targets;
    private int _count;

    /// <param name="rows">The layer's rows: no more are kept than the flushes they need (up to <see cref="MaxFlushes"/>).</param>
    public PendingRows(int features, int targets, long rows)
    {
        _features = features;
        _targets = targets;
        Capacity = (int)Math.Clamp((rows + BlockedProducts.Flush - 1) / BlockedProducts.Flush, 1, MaxFlushes) * BlockedProducts.Flush;
        _x = new float[(long)features * Capacity];
        _y = new float[(long)targets * Capacity];
    }

    /// <summary>Flushes per product call: four are one pass of the packed products over C.</summary>
    private const int MaxFlushes = 4;

    public int Capacity { get; }

    /// <summary>
    /// Adds <paramref name="rows"/> rows (feature f of row r at <c>xs[f·stride + r]</c>, target t at <c>ys[t·stride + r]</c>),
    /// forming the products into <paramref name="equations"/> each time <see cref="Capacity"/> rows are in.
    /// </summary>
    public void Add(float[] xs, float[] ys, int rows, int stride, NormalEquations equations)
    {
        for (int at = 0; at < rows;)
        {
            int take = Math.Min(rows - at, Capacity - _count);
            for (int f = 0; f < _features; f++) Array.Copy(xs, (long)f * stride + at, _x, (long)f * Capacity + _count, take);
            for (int t = 0; t < _targets; t++) Array.Copy(ys, (long)t * stride + at, _y, (long)t * Capacity + _count, take);
            _count += take;
            at += take;
            if (_count == Capacity) Flush(equations);
        }
    }

    /// <summary>Forms the products of the rows still waiting; before the equations are solved.</summary>
    public void Flush(NormalEquations equations)
    {
        if (_count == 0) return;
        equations.AddProducts(_x, _y, _count, Capacity, equations.ProductsInParallel(_count));
        _count = 0;
    }
}
