using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// A filter matrix's row Gram A·Aᵀ and its tridiagonal reduction, kept between the spectrum and the
/// selection so a large group is not multiplied and reduced twice (the two most expensive steps). Both
/// live in one buffer: the reduction in its upper triangle, G in its lower one (<see cref="LowerGram"/>).
/// </summary>
internal sealed class GramFactorization(LowerGram gram, SymmetricTridiagonal reduced)
{
    public LowerGram Gram { get; } = gram;
    public SymmetricTridiagonal Reduced { get; } = reduced;
}
