using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace OnnxSlim.Spectral;

/// <summary>
/// An epoch's removed rows at one scale s, whitened in removal order: vectors w_k such that for any row j
/// Σ_k (w_kᵀq_j)² = R_jD·R_DD⁻¹·R_Dj, with R = (T + s)⁻¹ in the factorisation's coordinates — how much
/// of R_jj all removals so far explain jointly (a running Cholesky of R_DD, one column per removal).
/// Coefficient k is what removal k adds given the earlier ones. Stored in float32: these only feed
/// screening thresholds, and the O(removals²·n) traffic is the epoch's main cost after the factorisation.
/// </summary>
internal sealed class WhitenedRemovals(int n)
{
    private readonly List<float[]?> _w = new();
    private readonly float[] _q = new float[n];
    private readonly float[] _v = new float[n];

    public int Count => _w.Count;

    /// <summary>Appends removal q (row of Q) with v = (T + s)⁻¹q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Add(ReadOnlySpan<double> q, ReadOnlySpan<double> v)
    {
        double ckk = TensorPrimitives.Dot(q, v), c0 = ckk;
        ToSingle(q, _q);
        ToSingle(v, _v);
        var w = (float[])_v.Clone();
        foreach (var wd in _w)
        {
            if (wd is null) continue;
            float l = TensorPrimitives.Dot(wd, _q);
            ckk -= (double)l * l;
            TensorPrimitives.MultiplyAdd(wd, -l, w, w);
        }
        if (!(ckk > 1e-6 * c0)) { _w.Add(null); return; } // already explained by earlier removals
        TensorPrimitives.Multiply(w, (float)(1 / Math.Sqrt(ckk)), w);
        _w.Add(w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToSingle(ReadOnlySpan<double> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = (float)src[i];
    }

    /// <summary>Squared coefficients of removals from..Count−1 for row q (already converted to float32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Coefficients(ReadOnlySpan<float> q, int from, Span<double> squares)
    {
        for (int k = from; k < _w.Count; k++)
        {
            double c = _w[k] is { } w ? TensorPrimitives.Dot(w, q) : 0;
            squares[k - from] = c * c;
        }
    }
}
