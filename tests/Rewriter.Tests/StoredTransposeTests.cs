using OnnxSlim.GraphIO;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>A Transpose of a stored weight (an export without constant folding) becomes the stored, permuted weight.</summary>
public sealed class StoredTransposeTests
{
    [Fact]
    public void An_hwio_float16_weight_behind_transpose_and_cast_is_stored_permuted_in_float16()
    {
        var b = new GraphBuilder(seed: 7);
        string x = b.Input("x", 1, 2, 5, 5);
        float[] hwio = b.Normal(3 * 3 * 2 * 4);
        string source = b.Init("w_hwio", [3, 3, 2, 4], hwio, DataType.Float16);
        string transposed = b.Node("Transpose", [source], ("perm", new long[] { 3, 2, 0, 1 }));
        string weight = b.Node("Cast", [transposed], ("to", (long)DataType.Float));
        b.Output(b.Node("Conv", [x, weight]), 1, 4, 3, 3);
        using var model = b.Model();

        Assert.Equal(1, StoredTransposes.Fold(model.Graph));

        Assert.DoesNotContain(model.Graph.Nodes, n => n.OpType == "Transpose");
        Assert.Null(model.Graph.Initializer(source));
        var folded = model.Graph.Initializer(transposed)!;
        Assert.Equal(DataType.Float16, folded.DataType);
        Assert.Equal([4L, 2, 3, 3], folded.Dims);
        float[] oihw = folded.ToFloats();
        for (int o = 0; o < 4; o++)
            for (int i = 0; i < 2; i++)
                for (int h = 0; h < 3; h++)
                    for (int w = 0; w < 3; w++)
                        Assert.Equal((float)(Half)hwio[((h * 3 + w) * 2 + i) * 4 + o], oihw[((o * 2 + i) * 3 + h) * 3 + w]);
        Assert.Equal(weight, model.Graph.Nodes.Single(n => n.OpType == "Conv").Input(1));
    }

    [Fact]
    public void A_source_read_elsewhere_stays_and_a_transposed_activation_is_left_alone()
    {
        var b = new GraphBuilder(seed: 8);
        string x = b.Input("x", 1, 8);
        string w = b.Init("w", [4, 8]);
        string product = b.Node("MatMul", [x, b.Node("Transpose", [w])]);
        string other = b.Node("Add", [b.Node("Transpose", [product]), b.Init("bias", [4, 1])]);
        b.Output(b.Node("Mul", [other, b.Node("ReduceSum", [w])]), 4, 1);
        using var model = b.Model();

        Assert.Equal(1, StoredTransposes.Fold(model.Graph));

        Assert.NotNull(model.Graph.Initializer(w));
        Assert.Single(model.Graph.Nodes, n => n.OpType == "Transpose");
        var folded = model.Graph.Initializer(model.Graph.Nodes.Single(n => n.OpType == "MatMul").Input(1))!;
        Assert.Equal([8L, 4], folded.Dims);
        float[] source = model.Graph.Initializer(w)!.ToFloats(), values = folded.ToFloats();
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 4; c++) Assert.Equal(source[c * 8 + r], values[r * 4 + c]);
    }

    [Fact]
    public void A_transpose_of_a_transpose_folds_in_two_sweeps()
    {
        var b = new GraphBuilder(seed: 9);
        string x = b.Input("x", 1, 6);
        float[] values = b.Normal(6 * 4);
        string once = b.Node("Transpose", [b.Init("v", [6, 4], values)]);
        b.Output(b.Node("MatMul", [x, b.Node("Transpose", [once])]), 1, 4);
        using var model = b.Model();

        Assert.Equal(2, StoredTransposes.Fold(model.Graph));

        Assert.DoesNotContain(model.Graph.Nodes, n => n.OpType == "Transpose");
        var folded = model.Graph.Initializer(model.Graph.Nodes.Single(n => n.OpType == "MatMul").Input(1))!;
        Assert.Equal([6L, 4], folded.Dims);
        Assert.Equal(values, folded.ToFloats());
    }
}
