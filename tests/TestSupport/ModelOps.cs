using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.TestSupport;

/// <summary>Small operations on test models: slicing a stored tensor, running a model, comparing outputs.</summary>
public static class ModelOps
{
    public static NamedTensor Floats(string name, long[] shape, float[] data) => new(name, TensorElementType.Float, shape, data);

    /// <summary>Keeps the given indices of one axis of a stored tensor (what a channel-pruning rewriter does).</summary>
    public static void SliceAxis(OnnxModel model, string tensorName, int axis, int[] keep)
    {
        var t = model.Graph.Initializer(tensorName) ?? throw new ArgumentException($"no initializer {tensorName}");
        long[] dims = t.Dims;
        float[] v = t.ToFloats();
        long outer = dims[..axis].Aggregate(1L, (a, b) => a * b), inner = dims[(axis + 1)..].Aggregate(1L, (a, b) => a * b);
        var result = new float[outer * keep.Length * inner];
        for (long o = 0; o < outer; o++)
            for (int k = 0; k < keep.Length; k++)
                Array.Copy(v, (o * dims[axis] + keep[k]) * inner, result, (o * keep.Length + k) * inner, inner);
        dims[axis] = keep.Length;
        t.SetFloats(dims, result);
    }

    /// <summary>The first output of <paramref name="model"/> on <paramref name="inputs"/>, as floats.</summary>
    public static float[] Run(OnnxModel model, params NamedTensor[] inputs)
    {
        using var runner = new ModelRunner(model.ToBytes());
        return runner.Run(inputs)[0].AsFloats();
    }

    /// <summary>max |a − b| / max |a|.</summary>
    public static double RelativeMaxError(float[] reference, float[] candidate)
    {
        Assert.Equal(reference.Length, candidate.Length);
        double scale = reference.Max(Math.Abs), worst = 0;
        for (int i = 0; i < reference.Length; i++) worst = Math.Max(worst, Math.Abs(reference[i] - candidate[i]));
        return worst / scale;
    }
}
