using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using OnnxSlim.Spectral.Numerics;

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
    public void Add(ReadOnlySpan<double> q, ReadOnlySpan<double> v) => Add(q, v, [], [], []);

    /// <summary>
    /// Appends removal q (row of Q) with v = (T + s)⁻¹q and, in the same pass over the stored vectors, takes the squared
    /// coefficients of <paramref name="rows"/> as <see cref="Coefficients(IReadOnlyList{float[]}, ReadOnlySpan{int}, IReadOnlyList{double[]})"/>
    /// would after the append (this removal included): the same bits, each stored vector read once for both.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Add(ReadOnlySpan<double> q, ReadOnlySpan<double> v, IReadOnlyList<float[]> rows, ReadOnlySpan<int> from, IReadOnlyList<double[]> squares)
    {
        double ckk = TensorPrimitives.Dot(q, v), c0 = ckk;
        ToSingle(q, _q);
        ToSingle(v, _v);
        var w = (float[])_v.Clone();
        // Every coefficient reads only _q and one stored vector: taken four at a time (the same bits as one
        // TensorPrimitives.Dot each), then applied in order while those four vectors are still in cache.
        Span<int> at = stackalloc int[4];
        Span<float> l = stackalloc float[4];
        Span<int> active = stackalloc int[from.Length];
        int pending = 0;
        for (int k = 0; k <= _w.Count; k++)
        {
            if (k < _w.Count)
            {
                if (_w[k] is null)
                {
                    Screen(k, rows, from, squares, active);
                    continue;
                }
                at[pending++] = k;
                if (pending < 4) continue;
                SameDots.Four(_q, _w[at[0]], _w[at[1]], _w[at[2]], _w[at[3]], l);
            }
            else for (int i = 0; i < pending; i++) l[i] = TensorPrimitives.Dot(_w[at[i]]!, _q);
            for (int i = 0; i < pending; i++) ckk -= (double)l[i] * l[i];
            if (pending == 4) SubtractFour(w, _w[at[0]]!, _w[at[1]]!, _w[at[2]]!, _w[at[3]]!, l);
            else for (int i = 0; i < pending; i++) TensorPrimitives.MultiplyAdd(_w[at[i]], -l[i], w, w);
            for (int i = 0; i < pending; i++) Screen(at[i], rows, from, squares, active);
            pending = 0;
        }
        if (!(ckk > 1e-6 * c0)) _w.Add(null); // already explained by earlier removals
        else
        {
            TensorPrimitives.Multiply(w, (float)(1 / Math.Sqrt(ckk)), w);
            _w.Add(w);
        }
        Screen(_w.Count - 1, rows, from, squares, active);
    }

    /// <summary>
    /// w ← w − l₀·w₀ − l₁·w₁ − l₂·w₂ − l₃·w₃ in one pass, each step rounded as <c>TensorPrimitives.MultiplyAdd(w_k, −l_k, w, w)</c>
    /// rounds it (the product, then the sum: not fused; checked by the tests): the same bits as those four calls, with w
    /// loaded and stored once instead of four times.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SubtractFour(Span<float> w, ReadOnlySpan<float> w0, ReadOnlySpan<float> w1, ReadOnlySpan<float> w2, ReadOnlySpan<float> w3,
        ReadOnlySpan<float> l)
    {
        int n = w.Length;
        if (w0.Length != n || w1.Length != n || w2.Length != n || w3.Length != n)
            throw new ArgumentException($"vectors of {w0.Length}, {w1.Length}, {w2.Length}, {w3.Length} values for w of {n}");
        float m0 = -l[0], m1 = -l[1], m2 = -l[2], m3 = -l[3];
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var v0 = Vector512.Create(m0); var v1 = Vector512.Create(m1);
            var v2 = Vector512.Create(m2); var v3 = Vector512.Create(m3);
            for (; i + 16 <= n; i += 16)
            {
                var acc = Vector512.Create(w.Slice(i, 16));
                acc = Vector512.Create(w0.Slice(i, 16)) * v0 + acc;
                acc = Vector512.Create(w1.Slice(i, 16)) * v1 + acc;
                acc = Vector512.Create(w2.Slice(i, 16)) * v2 + acc;
                acc = Vector512.Create(w3.Slice(i, 16)) * v3 + acc;
                acc.CopyTo(w.Slice(i, 16));
            }
        }
        for (; i < n; i++)
        {
            float acc = w[i];
            acc = w0[i] * m0 + acc;
            acc = w1[i] * m1 + acc;
            acc = w2[i] * m2 + acc;
            acc = w3[i] * m3 + acc;
            w[i] = acc;
        }
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
        var c = new float[_w.Count - from];
        Products(q, from, c);
        for (int k = from; k < _w.Count; k++)
        {
            double ck = c[k - from];
            squares[k - from] = ck * ck;
        }
    }

    /// <summary>
    /// <see cref="Coefficients(ReadOnlySpan{float}, int, Span{double})"/> of several rows in one pass over the stored vectors:
    /// squares[b][k − from[b]] for k = from[b]..Count−1, the same bits as one call per row. Each stored vector is read once
    /// and taken with up to four rows at a time (<see cref="SameDots"/>, whose products are TensorPrimitives.Dot's bits
    /// whichever row is first). Why: on VGG-16's fc2 the screening streamed ~30 MB of stored vectors per candidate, from
    /// memory, for every candidate the lazy phase popped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Coefficients(IReadOnlyList<float[]> q, ReadOnlySpan<int> from, IReadOnlyList<double[]> squares)
    {
        if (from.Length == 0) return;
        int lo = int.MaxValue;
        foreach (int f in from) lo = Math.Min(lo, f);
        Span<int> active = stackalloc int[from.Length];
        for (int k = lo; k < _w.Count; k++) Screen(k, q, from, squares, active);
    }

    /// <summary>squares[b][k − from[b]] = TensorPrimitives.Dot(w_k, q[b])² (0 for a removal already explained) for every row b with from[b] ≤ k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Screen(int k, IReadOnlyList<float[]> q, ReadOnlySpan<int> from, IReadOnlyList<double[]> squares, Span<int> active)
    {
        if (q.Count < from.Length || squares.Count < from.Length) throw new ArgumentException($"{q.Count} rows and {squares.Count} outputs for {from.Length} starts");
        var w = _w[k];
        int m = 0;
        for (int b = 0; b < from.Length; b++) if (from[b] <= k) active[m++] = b;
        if (w is null)
        {
            for (int a = 0; a < m; a++) squares[active[a]][k - from[active[a]]] = 0;
            return;
        }
        Span<float> four = stackalloc float[4];
        int t = 0;
        for (; t + 4 <= m; t += 4)
        {
            SameDots.Four(w, q[active[t]], q[active[t + 1]], q[active[t + 2]], q[active[t + 3]], four);
            for (int i = 0; i < 4; i++)
            {
                double c = four[i];
                squares[active[t + i]][k - from[active[t + i]]] = c * c;
            }
        }
        for (; t < m; t++)
        {
            double c = TensorPrimitives.Dot(w, q[active[t]]);
            squares[active[t]][k - from[active[t]]] = c * c;
        }
    }

    /// <summary>
    /// products[k − from] = TensorPrimitives.Dot(w_k, q) for k = from..Count−1 (0 for a removal already explained), four
    /// stored vectors at a time: one Dot is a single chain of additions, bound by their latency (the lazy phase's main
    /// cost on VGG-16's fc2, a core's worth of seconds); four chains side by side give the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Products(ReadOnlySpan<float> q, int from, Span<float> products)
    {
        Span<int> at = stackalloc int[4];
        Span<float> four = stackalloc float[4];
        int pending = 0;
        for (int k = from; k < _w.Count; k++)
        {
            if (_w[k] is null) { products[k - from] = 0; continue; }
            at[pending++] = k;
            if (pending < 4) continue;
            SameDots.Four(q, _w[at[0]], _w[at[1]], _w[at[2]], _w[at[3]], four);
            for (int i = 0; i < 4; i++) products[at[i] - from] = four[i];
            pending = 0;
        }
        for (int i = 0; i < pending; i++) products[at[i] - from] = TensorPrimitives.Dot(_w[at[i]]!, q);
    }
}
