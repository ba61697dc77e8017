using System.Runtime.Intrinsics;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxSlim.Calibration;

/// <summary>
/// Refuses a pass whose model computes ±∞ or NaN from the calibration samples. Moments and fits over such values
/// are NaN, and the pruned model would be written with NaN weights; the usual cause is a float16 model overflowing
/// (past ±65504) on samples scaled differently from what it was exported for, which the user can fix, so it is one
/// line naming the value and the sample.
/// </summary>
public static class FiniteValues
{
    /// <param name="data">Images [firstImage, …) of <paramref name="value"/>, <paramref name="perSample"/> values each.</param>
    internal static void Check(string model, string value, ReadOnlySpan<float> data, int firstImage, long perSample, TensorElementType type)
    {
        for (int i = FirstNonFinite(data); i < data.Length; i++)
        {
            if (float.IsFinite(data[i])) continue;
            string hint = type == TensorElementType.Float16 ? " (float16 overflows past ±65504: are the samples scaled as the model expects?)" : "";
            throw new ArgumentException($"the {model} model computes {Describe(data[i])} in '{value}' on calibration sample {firstImage + i / perSample}{hint}");
        }
    }

    /// <summary>
    /// Where the first vector holding ±∞ or NaN starts (v·0 is 0 only for a finite v), else the length: every pass
    /// checks everything it computes, and one value at a time this took a second of PP-OCRv4 rec's run. Blocks of
    /// 128 values are summed as v·0 into four independent vectors (NaN survives any sum) and only a block that ends
    /// NaN is searched vector by vector; one compare per vector bounded it at 4 % of rec's moments pass.
    /// </summary>
    private static int FirstNonFinite(ReadOnlySpan<float> data)
    {
        int i = 0;
        if (!Vector256.IsHardwareAccelerated) return 0;
        const int Block = 16 * 8;
        ref float start = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data);
        for (; i + Block <= data.Length; i += Block)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int k = 0; k < Block; k += 32)
            {
                a0 += Vector256.LoadUnsafe(ref start, (nuint)(i + k)) * Vector256<float>.Zero;
                a1 += Vector256.LoadUnsafe(ref start, (nuint)(i + k + 8)) * Vector256<float>.Zero;
                a2 += Vector256.LoadUnsafe(ref start, (nuint)(i + k + 16)) * Vector256<float>.Zero;
                a3 += Vector256.LoadUnsafe(ref start, (nuint)(i + k + 24)) * Vector256<float>.Zero;
            }
            if (!Vector256.EqualsAll((a0 + a1) + (a2 + a3), Vector256<float>.Zero)) break;
        }
        for (; i + Vector256<float>.Count <= data.Length; i += Vector256<float>.Count)
        {
            var v = Vector256.LoadUnsafe(ref start, (nuint)i);
            if (!Vector256.EqualsAll(v - v, Vector256<float>.Zero)) return i;
        }
        return i;
    }

    /// <summary>NaN, +inf or -inf, the same whatever the culture.</summary>
    public static string Describe(float v) => float.IsNaN(v) ? "NaN" : v > 0 ? "+inf" : "-inf";
}
