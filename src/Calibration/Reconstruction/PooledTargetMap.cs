using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
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

    /// <summary>
    /// <see cref="Apply"/> for <paramref name="rows"/> positions (row r's input at <c>x[r·Inputs ..]</c>, its targets at
    /// <c>destination[r·Outputs ..]</c>), the same bits row by row: each target is the bias plus the products of the row's
    /// non-zero inputs, each product rounded then added, in input order. Why: one row at a time went through the 16 MB of
    /// ResNet-50's classifier weights (2,048 × 1,000 float64) with a load and a store of every sum per product, 10,976 rows
    /// on one core before the classifier's level could start (3.5 s). Here a row's non-zero inputs are listed once, 32
    /// outputs keep their sums in registers while they go by, reading a copy of W's 32 columns laid out input-major (512 KB,
    /// from L2 for a block of rows), and the blocks run over the cores: 1.7–1.8× less CPU per row on random 2,048 × 1,000
    /// maps (half or none of the inputs zero).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Apply(ReadOnlySpan<float> x, int rows, Span<float> destination)
    {
        int k = Inputs, m = Outputs;
        if (x.Length < (long)rows * k || destination.Length < (long)rows * m)
            throw new ArgumentException($"{rows} rows need {(long)rows * k} inputs and {(long)rows * m} outputs, got {x.Length} and {destination.Length}");
        int blocks = (rows + BlockRows - 1) / BlockRows;
        var input = x[..(rows * k)].ToArray();
        var output = new float[rows * m];
        var columns = Vector256.IsHardwareAccelerated ? Columns() : [];
        void Block(int b)
        {
            int r0 = b * BlockRows, end = Math.Min(rows, r0 + BlockRows);
            // Each row's non-zero inputs (the zero ones add nothing, and are skipped as Apply skips them).
            var index = new int[(end - r0) * k];
            var value = new double[(end - r0) * k];
            var count = new int[end - r0];
            for (int r = r0; r < end; r++)
            {
                int c = 0, at = (r - r0) * k;
                for (int i = 0; i < k; i++)
                    if (input[r * k + i] is var v && v != 0)
                    {
                        index[at + c] = i;
                        value[at + c++] = v;
                    }
                count[r - r0] = c;
            }
            int vectorOutputs = Vector256.IsHardwareAccelerated ? m / ColumnWidth * ColumnWidth : 0;
            for (int o = 0; o < vectorOutputs; o += ColumnWidth)
                for (int r = r0; r < end; r++)
                    ThirtyTwo(columns, index.AsSpan((r - r0) * k, count[r - r0]), value.AsSpan((r - r0) * k, count[r - r0]), o / ColumnWidth, output.AsSpan(r * m + o, ColumnWidth));
            for (int r = r0; r < end; r++)
                for (int t = vectorOutputs; t < m; t++)
                {
                    double sum = _bias[t];
                    var rowIndex = index.AsSpan((r - r0) * k, count[r - r0]);
                    var rowValue = value.AsSpan((r - r0) * k, count[r - r0]);
                    for (int j = 0; j < rowIndex.Length; j++) sum += _weights[rowIndex[j] * m + t] * rowValue[j];
                    output[r * m + t] = (float)sum;
                }
        }
        if (blocks > 1 && (long)rows * k * m >= 1L << 22) Parallel.For(0, blocks, Block);
        else for (int b = 0; b < blocks; b++) Block(b);
        output.CopyTo(destination);
    }

    /// <summary>Rows per task in <see cref="Apply(ReadOnlySpan{float}, int, Span{float})"/>: a 32-output block of W's columns is read from memory once for them.</summary>
    private const int BlockRows = 64;

    /// <summary>W's columns in blocks of 32 outputs, each block input-major (<c>[i·32 + t]</c>), so a row's products read it in order; made on first use.</summary>
    private double[]? _columns;

    private double[] Columns()
    {
        if (_columns is not null) return _columns;
        int k = Inputs, m = Outputs, blocks = m / ColumnWidth;
        var columns = new double[(long)blocks * k * ColumnWidth];
        for (int c = 0; c < blocks; c++)
            for (int i = 0; i < k; i++)
                Array.Copy(_weights, (long)i * m + c * ColumnWidth, columns, ((long)c * k + i) * ColumnWidth, ColumnWidth);
        return _columns = columns;
    }

    private const int ColumnWidth = 32;

    /// <summary>Outputs [32c, 32c + 32) of one row from its non-zero inputs, the sums in registers; multiply then add, not fused, as Apply.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ThirtyTwo(double[] columns, ReadOnlySpan<int> index, ReadOnlySpan<double> value, int c, Span<float> destination)
    {
        int o = c * ColumnWidth;
        var s0 = Vector256.Create(_bias.AsSpan(o)); var s1 = Vector256.Create(_bias.AsSpan(o + 4));
        var s2 = Vector256.Create(_bias.AsSpan(o + 8)); var s3 = Vector256.Create(_bias.AsSpan(o + 12));
        var s4 = Vector256.Create(_bias.AsSpan(o + 16)); var s5 = Vector256.Create(_bias.AsSpan(o + 20));
        var s6 = Vector256.Create(_bias.AsSpan(o + 24)); var s7 = Vector256.Create(_bias.AsSpan(o + 28));
        ref double w = ref columns[(long)c * Inputs * ColumnWidth];
        for (int j = 0; j < index.Length; j++)
        {
            nuint at = (nuint)((long)index[j] * ColumnWidth);
            var v = Vector256.Create(value[j]);
            s0 += Vector256.LoadUnsafe(ref w, at) * v; s1 += Vector256.LoadUnsafe(ref w, at + 4) * v;
            s2 += Vector256.LoadUnsafe(ref w, at + 8) * v; s3 += Vector256.LoadUnsafe(ref w, at + 12) * v;
            s4 += Vector256.LoadUnsafe(ref w, at + 16) * v; s5 += Vector256.LoadUnsafe(ref w, at + 20) * v;
            s6 += Vector256.LoadUnsafe(ref w, at + 24) * v; s7 += Vector256.LoadUnsafe(ref w, at + 28) * v;
        }
        for (int t = 0; t < 4; t++)
        {
            destination[t] = (float)s0[t]; destination[4 + t] = (float)s1[t];
            destination[8 + t] = (float)s2[t]; destination[12 + t] = (float)s3[t];
            destination[16 + t] = (float)s4[t]; destination[20 + t] = (float)s5[t];
            destination[24 + t] = (float)s6[t]; destination[28 + t] = (float)s7[t];
        }
    }
}
