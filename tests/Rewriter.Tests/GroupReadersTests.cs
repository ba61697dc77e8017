using OnnxSlim.TestSupport;
namespace OnnxSlim.Rewriter.Tests;

public sealed class GroupReadersTests
{
    [Fact]
    public void Readers_of_a_concat_segment_see_it_at_its_offset_with_their_weights_on_it()
    {
        var model = Patterns.Build("concat").Model();
        var groups = Harness.Analyze(model);
        // The 10-channel branch sits at channels [6, 16) of the Concat that the last conv reads.
        var branch = Assert.Single(groups, g => g.Width == 10);
        var reader = Assert.Single(GroupReaders.Find(groups, branch, out int skipped));
        Assert.Equal(0, skipped);
        Assert.Equal("Conv", reader.Layer.OpType);
        Assert.Equal(Enumerable.Range(6, 10), reader.Positions);
        var w = model.Graph.ResolveWeight(reader.Layer.Input(1))!.Tensor;
        Assert.Equal(new long[] { 4, 21, 1, 1 }, w.Dims);
        var values = w.ToFloats();
        Assert.Equal(4, reader.Weights.Cols);
        for (int j = 0; j < 10; j++)
            for (int o = 0; o < 4; o++) Assert.Equal(values[o * 21 + 6 + j], reader.Weights.Row(j)[o], 6);

        // The stem is read by three convs, one of them behind a MaxPool (same channels, same positions).
        var stem = Assert.Single(groups, g => g.Width == 8);
        var stemReaders = GroupReaders.Find(groups, stem, out _);
        Assert.Equal(3, stemReaders.Count);
        Assert.All(stemReaders, r => Assert.Equal(Enumerable.Range(0, 8), r.Positions));
        Assert.Equal(2, stemReaders.Select(r => r.Input).Distinct().Count());
    }

    [Fact]
    public void A_gemm_reading_a_flattened_map_is_measured_on_the_map_with_all_features_of_a_channel_in_its_row()
    {
        // conv (6 channels) → MaxPool to 4×4 → Flatten [1, 96] → Gemm fc1 [96, 7]: channel j owns features 16j..16j+15.
        var model = Patterns.Build("flatten_chw").Model();
        var groups = Harness.Analyze(model);
        var conv = Assert.Single(groups, g => g.Width == 6);
        var reader = Assert.Single(GroupReaders.Find(groups, conv, out int skipped));
        Assert.Equal(0, skipped);
        Assert.Equal("Gemm", reader.Layer.OpType);
        Assert.Equal("MaxPool", model.Graph.Producer(reader.Input)!.OpType);
        Assert.Equal(Enumerable.Range(0, 6), reader.Positions);
        var fc1 = model.Graph.ResolveWeight(reader.Layer.Input(1))!.Tensor.ToFloats();
        Assert.Equal(16 * 7, reader.Weights.Cols);
        for (int j = 0; j < 6; j++)
            Assert.Equal(fc1.AsSpan(j * 112, 112).ToArray().Select(v => (double)v), reader.Weights.Row(j).ToArray());
    }

    [Fact]
    public void Reader_weights_carry_the_batchnorm_scale_of_their_outputs()
    {
        // conv1 (8) → BN → Relu → conv2 (8→12) → BN(12) → Relu → conv3: conv2 reads group 8, and its outputs go through a BN.
        var model = Patterns.Build("batchnorm").Model();
        var groups = Harness.Analyze(model);
        var reader = Assert.Single(GroupReaders.Find(groups, Assert.Single(groups, g => g.Width == 8), out _));
        var graph = model.Graph;
        var w = graph.ResolveWeight(reader.Layer.Input(1))!.Tensor.ToFloats();
        var bn = graph.Consumers(reader.Layer.Outputs[0]).Single();
        Assert.Equal("BatchNormalization", bn.OpType);
        var gamma = graph.ResolveWeight(bn.Input(1))!.Tensor.ToFloats();
        var variance = graph.ResolveWeight(bn.Input(4))!.Tensor.ToFloats();
        Assert.Equal(12 * 9, reader.Weights.Cols);
        for (int j = 0; j < 8; j++)
            for (int o = 0; o < 12; o++)
                for (int tap = 0; tap < 9; tap++)
                    Assert.Equal(w[(o * 8 + j) * 9 + tap] * gamma[o] / Math.Sqrt(variance[o] + 1e-5), reader.Weights.Row(j)[o * 9 + tap], 5);
    }

    [Fact]
    public void A_matmul_reader_is_left_out_and_counted()
    {
        var groups = Harness.Analyze(Patterns.Build("transpose_matmul").Model());
        Assert.Contains(groups.Where(g => g.Prunable), g => GroupReaders.Find(groups, g, out int skipped).Count == 0 && skipped > 0);
    }
}
