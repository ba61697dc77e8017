using System.Text;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Runtime.Tests;

/// <summary>Issue 12: shapes and .npy files that must be refused with one line, before anything is allocated.</summary>
public sealed class BadInputTests
{
    [Fact]
    public void Shapes_too_large_to_feed_are_refused_from_the_model_and_from_shape_options()
    {
        using var runner = new ModelRunner(File.ReadAllBytes(Fixtures.BnResnet));
        var e = Assert.Throws<ArgumentException>(() => InputShapes.Resolve(runner.Inputs, ["input=1000000000,1,28,28"]));
        Assert.Contains("more than", e.Message);
        Assert.Throws<ArgumentException>(() => InputShapes.Resolve(runner.Inputs, ["input=1,1,100000,100000"]));
        Assert.Throws<ArgumentException>(() => InputShapes.Resolve(runner.Inputs, ["input=99999999999999999999,1,28,28"]));
        Assert.Throws<ArgumentException>(() => InputShapes.Resolve(runner.Inputs, ["input=0,1,28,28"]));
        // Batch 1e9 on a dynamic batch dim: the product is checked, never computed past the limit.
        Assert.Throws<ArgumentException>(() => InputShapes.Resolve(runner.Inputs, [], batch: 1_000_000_000));
    }

    [Theory]
    [InlineData(1_000_000_000L)]
    [InlineData(int.MaxValue)]
    [InlineData(0L)]
    public void A_model_input_with_an_absurd_or_empty_dim_is_refused(long dim)
    {
        var b = new GraphBuilder();
        string x = b.Input("input", 1, 3, 8, 8);
        b.Graph.Input[0].Type.TensorType.Shape.Dim[2].DimValue = dim;
        b.Output(b.Relu(x), 1, 3, 8, 8);
        using var runner = new ModelRunner(b.Bytes());
        var e = Assert.Throws<ArgumentException>(() => InputShapes.Resolve(runner.Inputs, []));
        Assert.Contains("input 'input'", e.Message);
        // A --shape override makes such a model usable.
        Assert.Equal([1L, 3, 8, 8], InputShapes.Resolve(runner.Inputs, ["input=1,3,8,8"])["input"]);
    }

    /// <summary>
    /// A shape that contradicts a fixed dim (`--shape input=1,3,6,8` on a 1×3×8×8 input) fails in ONNX Runtime, whose
    /// message lists the dims on the lines after its first; the one line reported used to end at "for the following indices".
    /// </summary>
    [Fact]
    public void A_fixed_dim_fed_another_size_is_reported_with_the_dims()
    {
        var b = new GraphBuilder();
        string x = b.Input("input", 1, 3, 8, 8);
        b.Output(b.Relu(x), 1, 3, 8, 8);
        using var runner = new ModelRunner(b.Bytes());
        var e = Assert.Throws<RuntimeUnavailableException>(() => runner.Run([new NamedTensor("input", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [1, 3, 6, 8], new float[144])]));
        Assert.DoesNotContain("\n", e.Message);
        Assert.Contains("for the following indices; index: 2 Got: 6 Expected: 8", e.Message);
    }

    private static string Npy(string header, byte[]? data = null, byte major = 1)
    {
        string path = Path.Combine(Fixtures.TempDir(), "x.npy");
        var h = Encoding.ASCII.GetBytes(header);
        using var s = File.Create(path);
        s.Write([0x93, .. "NUMPY"u8, major, 0]);
        if (major == 1) s.Write(BitConverter.GetBytes((ushort)h.Length)); else s.Write(BitConverter.GetBytes((uint)h.Length));
        s.Write(h);
        s.Write(data ?? new byte[16]);
        return path;
    }

    [Theory]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", "more elements")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", "more elements")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4611686018427387904), }", "more elements")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "dimensions must be non-negative integers")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (N, 1, 28, 28), }", "dimensions must be non-negative integers")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': [...], }", "malformed shape")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4), }", "dimensions must be non-negative integers")]
    [InlineData("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "dtype")]
    [InlineData("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", "Fortran")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (400,), }", "holds 16 data bytes")]
    [InlineData("{'descr': '<f4', 'shape': (2,), }", "no 'fortran_order'")]
    public void Npy_headers_that_cannot_be_read_are_refused_naming_the_file(string header, string expected)
    {
        string path = Npy(header);
        var e = Assert.Throws<ArgumentException>(() => NpyFile.Read(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Npy_versions_and_header_lengths_are_checked()
    {
        Assert.Contains("version 9", Assert.Throws<ArgumentException>(() => NpyFile.Read(Npy("{}", major: 9))).Message);
        string huge = Path.Combine(Fixtures.TempDir(), "huge.npy");
        File.WriteAllBytes(huge, [0x93, .. "NUMPY"u8, 2, 0, 0xFF, 0xFF, 0xFF, 0x7F]);
        Assert.Contains("header", Assert.Throws<ArgumentException>(() => NpyFile.Read(huge)).Message);
        string truncated = Path.Combine(Fixtures.TempDir(), "t.npy");
        File.WriteAllBytes(truncated, [0x93, .. "NUMPY"u8, 1]);
        Assert.Throws<ArgumentException>(() => NpyFile.Read(truncated));
    }
}
