using OnnxSlim.Runtime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace OnnxSlim.Bench;

/// <summary>A labelled image set (.npy images and labels) and the evaluation loops over it.</summary>
public sealed class Classification(NpyFile.NpyArray images, long[] labels, int count)
{
    public static Classification Load(string imagesPath, string labelsPath, int maxCount)
    {
        var x = NpyFile.Read(imagesPath);
        var y = NpyFile.Read(labelsPath).Longs ?? throw new ArgumentException($"'{labelsPath}' holds no integer labels");
        return new Classification(x, y, Math.Min(maxCount, (int)x.Shape[0]));
    }

    public int Count => count;

    /// <summary>Images [first, first + n) as the model's input named <paramref name="input"/>.</summary>
    public NamedTensor Batch(string input, int first, int n)
    {
        long per = images.Floats!.Length / images.Shape[0];
        return new NamedTensor(input, TensorElementType.Float, [n, .. images.Shape[1..]], images.Floats.AsSpan((int)(first * per), (int)(n * per)).ToArray());
    }

    /// <summary>argmax of the model's first output for every image, in batches.</summary>
    public int[] Predict(byte[] model, int batch = 1000)
    {
        using var runner = new ModelRunner(model);
        string input = runner.Inputs.Keys.First();
        var predictions = new int[count];
        for (int first = 0; first < count; first += batch)
        {
            int n = Math.Min(batch, count - first);
            float[] logits = runner.Run([Batch(input, first, n)])[0].AsFloats();
            int classes = logits.Length / n;
            for (int i = 0; i < n; i++) predictions[first + i] = OutputComparison.ArgMax(logits.AsSpan(i * classes, classes));
        }
        return predictions;
    }

    public double Accuracy(byte[] model)
    {
        var predicted = Predict(model);
        return (double)predicted.Where((p, i) => p == labels[i]).Count() / count;
    }

    public static double Agreement(int[] a, int[] b) => (double)a.Zip(b).Count(p => p.First == p.Second) / a.Length;
}
