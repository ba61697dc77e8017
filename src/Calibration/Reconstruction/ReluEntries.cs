using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxSlim.Calibration;

/// <summary>
/// The per-entry work of the ReLU-aware re-solves on one output's run of stored rows (see <see cref="LayerFit"/>): the
/// ReLU error of a prediction, and the ReLU-aware target that replaces it. Four entries at a time in float64 lanes, each
/// lane the scalar formula's operations in its order (multiply, then add: never fused), and the error's sums added one
/// entry at a time in row order, so the results are the scalar loop's bits. On ResNet-50's conv3 fits (~2,000 outputs,
/// ~450 features) these loops took longer than the predictions themselves.
/// </summary>
internal static class ReluEntries
{
    /// <summary>
    /// Adds Σ (relu(a·p + c) − relu(a·τ + c))² to <paramref name="error"/> and Σ relu(a·τ + c)² to <paramref name="total"/>
    /// over the entries of <paramref name="tau"/>, <paramref name="offset"/> and <paramref name="prediction"/> (same length).
    /// </summary>
    public static void Error(ReadOnlySpan<float> tau, ReadOnlySpan<float> offset, ReadOnlySpan<float> prediction, double a, ref double error, ref double total) =>
        Sums(new Relu(), tau, offset, prediction, a, ref error, ref total);

    /// <summary>
    /// As <see cref="Error"/> for a hard gate g(z) = z·clip(z + k, 0, t)/t (<see cref="HardGate.Apply"/>) in place of the
    /// ReLU: Σ (g(a·p + c) − g(a·τ + c))² and Σ g(a·τ + c)². The lanes clip with max then min, which gives +0 where the
    /// scalar clip would keep a −0 (z + k = −0): the gate's value would then be a zero of the other sign, whose square and
    /// differences are the same, so the sums are still the scalar loop's bits. One call a sweep per output of PP-OCRv4 rec's
    /// hard-swish layers: the scalar loop was ~1 CPU s of its reconstruction.
    /// </summary>
    public static void GateError(ReadOnlySpan<float> tau, ReadOnlySpan<float> offset, ReadOnlySpan<float> prediction, double a, HardGate gate,
        ref double error, ref double total) =>
        Sums(new Gate(gate), tau, offset, prediction, a, ref error, ref total);

    /// <summary>The error sums of <see cref="Error"/> with activation <typeparamref name="T"/> (a struct: one compiled loop each).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sums<T>(T activation, ReadOnlySpan<float> tau, ReadOnlySpan<float> offset, ReadOnlySpan<float> prediction, double a,
        ref double error, ref double total) where T : struct, IActivation
    {
        int count = tau.Length;
        SameLength(count, offset.Length, prediction.Length);
        double e = error, z2 = total;
        int r = 0;
        if (Avx.IsSupported)
        {
            ref float t0 = ref MemoryMarshal.GetReference(tau);
            ref float c0 = ref MemoryMarshal.GetReference(offset);
            ref float p0 = ref MemoryMarshal.GetReference(prediction);
            var av = Vector256.Create(a);
            for (; r + 4 <= count; r += 4)
            {
                var t = Widened(ref t0, r);
                var c = Widened(ref c0, r);
                var p = Widened(ref p0, r);
                var z = activation.Apply(Avx.Add(Avx.Multiply(av, t), c));
                var zp = activation.Apply(Avx.Add(Avx.Multiply(av, p), c));
                var d = Avx.Subtract(zp, z);
                var dd = Avx.Multiply(d, d);
                var zz = Avx.Multiply(z, z);
                e += dd.GetElement(0); z2 += zz.GetElement(0);
                e += dd.GetElement(1); z2 += zz.GetElement(1);
                e += dd.GetElement(2); z2 += zz.GetElement(2);
                e += dd.GetElement(3); z2 += zz.GetElement(3);
            }
        }
        for (; r < count; r++)
        {
            double z = activation.Apply(a * tau[r] + offset[r]), zp = activation.Apply(a * prediction[r] + offset[r]);
            e += (zp - z) * (zp - z);
            z2 += z * z;
        }
        error = e;
        total = z2;
    }

    /// <summary>An activation as the error sums apply it: on four float64 lanes, and on one value (the scalar formula).</summary>
    private interface IActivation
    {
        Vector256<double> Apply(Vector256<double> u);
        double Apply(double u);
    }

    private readonly struct Relu : IActivation
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<double> Apply(Vector256<double> u) => Avx.Max(u, Vector256<double>.Zero);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public double Apply(double u) => Math.Max(u, 0);
    }

    private readonly struct Gate(HardGate gate) : IActivation
    {
        private readonly Vector256<double> _shift = Vector256.Create(gate.Shift), _top = Vector256.Create(gate.Top);
        private readonly HardGate _gate = gate;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<double> Apply(Vector256<double> u) =>
            Avx.Divide(Avx.Multiply(u, Avx.Min(Avx.Max(Avx.Add(u, _shift), Vector256<double>.Zero), _top)), _top);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public double Apply(double u) => _gate.Apply(u);
    }

    /// <summary>
    /// Replaces the predictions p in <paramref name="prediction"/> by the ReLU-aware targets: τ where the original
    /// pre-activation a·τ + c reaches <paramref name="floor"/>; else p where a·p + c stays at or below it (already exact
    /// after the activation); else the value whose pre-activation is the floor, (floor − c)·<paramref name="inverse"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Retarget(ReadOnlySpan<float> tau, ReadOnlySpan<float> offset, Span<float> prediction, double a, double inverse, double floor)
    {
        int count = tau.Length;
        SameLength(count, offset.Length, prediction.Length);
        int r = 0;
        if (Avx.IsSupported)
        {
            ref float t0 = ref MemoryMarshal.GetReference(tau);
            ref float c0 = ref MemoryMarshal.GetReference(offset);
            ref float p0 = ref MemoryMarshal.GetReference(prediction);
            var av = Vector256.Create(a);
            var inv = Vector256.Create(inverse);
            var f = Vector256.Create(floor);
            for (; r + 4 <= count; r += 4)
            {
                var t = Widened(ref t0, r);
                var c = Widened(ref c0, r);
                var p = Widened(ref p0, r);
                var reaches = Avx.CompareGreaterThanOrEqual(Avx.Add(Avx.Multiply(av, t), c), f);
                var above = Avx.CompareGreaterThan(Avx.Add(Avx.Multiply(av, p), c), f);
                var pulled = Avx.Multiply(Avx.Subtract(f, c), inv);
                var target = Avx.BlendVariable(Avx.BlendVariable(p, pulled, above), t, reaches);
                Avx.ConvertToVector128Single(target).StoreUnsafe(ref p0, (nuint)r);
            }
        }
        for (; r < count; r++)
        {
            double t = tau[r], c = offset[r];
            if (a * t + c >= floor) prediction[r] = (float)t;
            else if (a * prediction[r] + c > floor) prediction[r] = (float)((floor - c) * inverse);
        }
    }

    /// <summary>Four float32 entries from <paramref name="at"/> + <paramref name="r"/>, widened to float64 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Widened(ref float at, int r) => Avx.ConvertToVector256Double(Vector128.LoadUnsafe(ref at, (nuint)r));

    private static void SameLength(int tau, int offset, int prediction)
    {
        if (offset != tau || prediction != tau)
            throw new ArgumentException($"the runs must have one length, got tau {tau}, offset {offset}, prediction {prediction}");
    }
}
