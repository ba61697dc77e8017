using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// A filter matrix's row Gram A·Aᵀ and its tridiagonal reduction, kept between the spectrum and the
/// selection so a large group is not multiplied and reduced twice (the two most expensive steps).
/// </summary>
internal sealed class GramFactorization(double[] gram, SymmetricTridiagonal reduced)
{
    public double[] Gram { get; } = gram;
    public SymmetricTridiagonal Reduced { get; } = reduced;
}
