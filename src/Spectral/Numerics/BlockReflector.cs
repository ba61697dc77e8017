namespace OnnxSlim.Spectral.Numerics;

/// <summary>The compact form of a block of Householder reflectors (LAPACK dlarft, forward, columnwise).</summary>
internal static class BlockReflector
{
    /// <summary>
    /// Writes T (upper triangular, row stride <paramref name="ldt"/>, the rest of <paramref name="tw"/> cleared) with
    /// H_0⋯H_{nb−1} = I − V·T·Vᵀ, reflector i being <paramref name="v"/>[i·<paramref name="stride"/> + <paramref name="start"/> ..]
    /// (<paramref name="m"/> long, its leading 1 explicit) with factor <paramref name="tau"/>[i]. A reflector with τ = 0
    /// (H = I) leaves its column of T zero.
    /// </summary>
    public static void Triangular(double[] v, int stride, int start, int m, ReadOnlySpan<double> tau, int nb, double[] tw, int ldt)
    {
        if (nb > ldt) throw new ArgumentException($"{nb} reflectors need a T of at least {nb} columns, got {ldt}", nameof(nb));
        Array.Clear(tw);
        Span<double> t = stackalloc double[nb];
        for (int i = 0; i < nb; i++)
        {
            tw[i * ldt + i] = tau[i];
            if (i == 0 || tau[i] == 0) continue;
            var vi = v.AsSpan(i * stride + start, m);
            for (int k = 0; k < i; k++) t[k] = -tau[i] * System.Numerics.Tensors.TensorPrimitives.Dot(v.AsSpan(k * stride + start, m), vi);
            for (int r = 0; r < i; r++)
            {
                double sum = 0;
                for (int k = r; k < i; k++) sum += tw[r * ldt + k] * t[k];
                tw[r * ldt + i] = sum;
            }
        }
    }
}
