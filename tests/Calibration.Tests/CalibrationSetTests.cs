using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.Runtime;

namespace OnnxSlim.Calibration.Tests;

/// <summary>A calibration set over the first samples of a larger array (no copy) reads exactly those samples.</summary>
public class CalibrationSetTests
{
    [Fact]
    public void FirstRowsShareTheDataAndReadOnlyTheirSamples()
    {
        // 5 samples of 2×3; the set sees the first 3, and whatever it hands ONNX Runtime has its exact length.
        var data = Enumerable.Range(0, 30).Select(i => (float)i).ToArray();
        var all = new NamedTensor("x", TensorElementType.Float, [5, 2, 3], data);
        var first = all.FirstRows(3);
        Assert.Same(data, first.Data);
        Assert.Equal(new long[] { 3, 2, 3 }, first.Shape);
        Assert.Equal(new long[] { 5, 2, 3 }, all.Shape);

        var set = new CalibrationSet([first]);
        Assert.Equal(3, set.Images);
        var sample = new float[6];
        set.CopyFloats("x", 2, 1, sample);
        Assert.Equal(data[12..18], sample);
        var whole = Assert.Single(set.Slice(0, 3));
        Assert.Equal(18, whole.Data.Length);
        Assert.Equal(data[..18], (float[])whole.Data);
        Assert.Throws<ArgumentException>(() => set.Slice(2, 2));
        Assert.Throws<ArgumentException>(() => all.FirstRows(6));
        Assert.Throws<ArgumentException>(() => new CalibrationSet([all with { Shape = [6, 2, 3] }]));
    }
}
