using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// The Gram (all inner products) of rows read from an <see cref="IRowSource"/>, for callers outside the spectral
/// stage: the data-free fold of a wide group reads every removed filter's inner products with the kept ones from it.
/// Built one depth panel at a time (nothing as large as the rows is stored), with float32 products where
/// <see cref="GramMatrix.SingleMinCost"/> says so, exactly as the spectra are.
/// </summary>
public static class RowGram
{
    /// <summary>rows × rows, row-major, full symmetric storage; both cores when one would otherwise idle.</summary>
    public static double[] Compute(IRowSource source, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(source);
        var g = new double[(long)rows * rows];
        if (UsesSingle(rows, cols)) SingleGram.GramOfRows(source, rows, cols, g, parallel: true);
        else Gemm.GramOfRows(source, rows, cols, g, parallel: true);
        return g;
    }

    /// <summary>Whether <see cref="Compute"/> takes float32 products for this size (the spectra's rule, <see cref="GramMatrix.SingleMinCost"/>).</summary>
    public static bool UsesSingle(int rows, int cols) => SingleGram.Available && (double)rows * rows * cols >= GramMatrix.SingleMinCost;
}
