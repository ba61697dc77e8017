using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxSlim.Spectral.Numerics;

/// <summary>
/// The float32 register tiles' way into float64: a tile's sums over one depth panel, stored row by row, added to C. Shared
/// by <see cref="SingleGram"/> and <see cref="PackedProducts"/>, whose panel sums are what keeps their rounding near float32's.
/// </summary>
internal static unsafe class FloatTileSums
{
    /// <summary>
    /// C[r·ldc + q] += acc[r·stride + q] for r &lt; <paramref name="rows"/>, q &lt; <paramref name="columns"/>; a whole tile row
    /// (columns = stride, a multiple of 16) sixteen at a time in 512-bit lanes where there are some: the same float64 additions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddWidened(float* acc, int stride, double* c, int ldc, int rows, int columns)
    {
        if (Vector512.IsHardwareAccelerated && columns == stride && stride % 16 == 0)
        {
            for (int r = 0; r < rows; r++)
            {
                double* cr = c + (long)r * ldc;
                float* ar = acc + r * stride;
                for (int q = 0; q < stride; q += 16)
                {
                    var (lo, hi) = Vector512.Widen(Vector512.Load(ar + q));
                    (Vector512.Load(cr + q) + lo).Store(cr + q);
                    (Vector512.Load(cr + q + 8) + hi).Store(cr + q + 8);
                }
            }
            return;
        }
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < columns; q++) c[(long)r * ldc + q] += acc[r * stride + q];
    }
}
