using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// A filter matrix's row Gram A·Aᵀ and its tridiagonal reduction, kept between the spectrum and the
/// selection so a large group is not multiplied and reduced twice (the two most expensive steps). Both
/// live in one buffer: the reduction in its upper triangle, G in its lower one (<see cref="LowerGram"/>).
/// </summary>
internal sealed class GramFactorization(LowerGram gram, SymmetricTridiagonal? reduced)
{
    public LowerGram Gram { get; } = gram;
    /// <summary>Null when the spectrum took the eigenvalues-only path (<see cref="FilterSpectrum.EigenvaluesOnly"/>).</summary>
    public SymmetricTridiagonal? Reduced { get; } = reduced;

    /// <summary>GEM's first epoch on this factorisation, started before the keep count is known (<see cref="GemSelector.StartFirstEpoch"/>).</summary>
    public PreparedEpoch? FirstEpoch { get; set; }

    /// <summary>Stops and frees a started first epoch, then hands the Gram's buffer back: no use afterwards.</summary>
    public void Release()
    {
        if (FirstEpoch is { } first)
        {
            first.Cancel.Cancel();
            IdleCores.Waiting(() => first.Work.Wait());
            first.Work.Result?.Release();
        }
        Gram.Release();
    }
}

/// <summary>A first GEM epoch running (or done) on its own thread, by <see cref="Options"/>' settings.</summary>
internal sealed record PreparedEpoch(GemSelector Options, int Budget, CancellationTokenSource Cancel, Task<GemEpoch?> Work);
