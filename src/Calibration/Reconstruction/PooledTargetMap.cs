using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// The original classifier applied to one position of its pooled input: y = x·W + b restricted to the
/// kept outputs. Averaging these over positions gives the original logits exactly, so they are the
/// per-position targets of a classifier behind global average pooling.
/// </summary>
/// <param name="weights">Inputs × Outputs, row-major.</param>
/// <param name="bias">One per output.</param>
internal sealed class PooledTargetMap(int inputs, int outputs, double[] weights, double[] bias)
{
    private readonly double[] _weights = weights;
    private readonly double[] _bias = bias;

    public int Inputs { get; } = inputs;
    public int Outputs { get; } = outputs;

    public static PooledTargetMap Build(ConsumerUnit unit, Graph original)
    {
        var node = unit.OriginalNodes[0];
        var b = original.ResolveWeight(node.Input(1)) ?? throw new LayerSkippedException("the original weight is not constant");
        long[] dims = b.Tensor.Dims;
        float[] w = b.Tensor.ToFloats();
        bool transB = unit.Kind == ConsumerKind.Gemm && Rewriter.Layers.Weight(node, dims)?.OutputAxis == 0;
        int k = (int)(transB ? dims[1] : dims[0]), n = (int)(transB ? dims[0] : dims[1]);
        double alpha = unit.Kind == ConsumerKind.Gemm ? node.GetFloat("alpha", 1) : 1;
        double beta = unit.Kind == ConsumerKind.Gemm ? node.GetFloat("beta", 1) : 0;
        int m = unit.Outputs;
        var weights = new double[(long)k * m];
        for (int i = 0; i < k; i++)
            for (int o = 0; o < m; o++)
            {
                int j = unit.KeptOutputs[o];
                weights[i * m + o] = alpha * w[transB ? j * k + i : i * n + j];
            }
        var bias = new double[m];
        if (unit.Kind == ConsumerKind.Gemm && beta != 0 && node.Input(2).Length > 0)
        {
            var c = original.ResolveWeight(node.Input(2))?.Tensor ?? throw new LayerSkippedException("the original Gemm bias is not constant");
            float[] cv = c.ToFloats();
            if (cv.Length != n && cv.Length != 1) throw new LayerSkippedException($"the original Gemm bias has {cv.Length} values, not {n} or 1");
            for (int o = 0; o < m; o++) bias[o] = beta * cv[cv.Length == 1 ? 0 : unit.KeptOutputs[o]];
        }
        return new PooledTargetMap(k, m, weights, bias);
    }

    /// <summary>Writes the m targets of one position's input vector <paramref name="x"/> (length C).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Apply(ReadOnlySpan<float> x, Span<float> destination)
    {
        int m = Outputs;
        Span<double> acc = m <= 512 ? stackalloc double[m] : new double[m];
        _bias.CopyTo(acc);
        for (int i = 0; i < Inputs; i++)
        {
            double v = x[i];
            if (v == 0) continue;
            // Multiply then add, not fused: the same bits as the plain loop, a vector at a time.
            TensorPrimitives.MultiplyAdd(_weights.AsSpan(i * m, m), v, acc, acc);
        }
        for (int o = 0; o < m; o++) destination[o] = (float)acc[o];
    }
}
