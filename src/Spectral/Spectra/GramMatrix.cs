using System.Runtime.CompilerServices;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>Gram matrices of a filter matrix (row-major, full symmetric storage).</summary>
internal static class GramMatrix
{
    /// <summary>
    /// Grams at least this costly (rows²·cols multiply-adds) are built with float32 products (<see cref="SingleGram"/>):
    /// VGG-16's 4096-wide classifier groups (4·10¹¹ and 7·10¹⁰). No group of ResNet-50, MobileNetV2, GoogLeNet,
    /// DenseNet-121 or the R50-FPN detectors comes within 3× of it (the largest, a detector's box head, 1.3·10¹⁰),
    /// so their spectra and plans are what float64 gives, bit for bit.
    /// </summary>
    public const double SingleMinCost = 4e10;

    /// <summary>Whether <see cref="OfRows"/> builds this matrix's Gram with float32 products.</summary>
    public static bool UsesSingle(FilterMatrix m) =>
        m.Streamed is not null && SingleGram.Available && (double)m.Rows * m.Rows * m.Cols >= SingleMinCost;

    /// <summary>A·Aᵀ (rows×rows) in a <see cref="WorkArrays"/> buffer: the filters' inner products.</summary>
    public static double[] OfRows(FilterMatrix m, bool parallel)
    {
        var g = WorkArrays.Rent(m.Rows * m.Rows);
        if (UsesSingle(m)) SingleGram.GramOfRows(m.Streamed!, m.Rows, m.Cols, g, parallel);
        else if (m.Streamed is { } source) Gemm.GramOfRows(source, m.Rows, m.Cols, g, parallel);
        else Gemm.GramOfRows(m.Data, m.Rows, m.Cols, g, parallel);
        return g;
    }

    /// <summary>
    /// The Gram on the smaller side: A·Aᵀ when rows ≤ cols, else Aᵀ·A. Same non-zero eigenvalues
    /// (σ²), but O(min²·max) work and min² memory. A <see cref="WorkArrays"/> buffer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double[] SmallerSide(FilterMatrix m, bool parallel)
    {
        if (m.Rows <= m.Cols) return OfRows(m, parallel);
        var t = WorkArrays.Rent(m.Rows * m.Cols);
        var a = m.Data;
        for (int i = 0; i < m.Rows; i++)
            for (int j = 0; j < m.Cols; j++)
                t[j * m.Rows + i] = a[i * m.Cols + j];
        var g = WorkArrays.Rent(m.Cols * m.Cols);
        Gemm.GramOfRows(t.AsSpan(0, m.Rows * m.Cols), m.Cols, m.Rows, g, parallel);
        WorkArrays.Return(t);
        return g;
    }

    /// <summary>Rough flop count of the spectrum (for scheduling).</summary>
    public static double Cost(FilterMatrix m)
    {
        double r = Math.Min(m.Rows, m.Cols), c = Math.Max(m.Rows, m.Cols);
        return r * r * c + 1.5 * r * r * r;
    }
}
