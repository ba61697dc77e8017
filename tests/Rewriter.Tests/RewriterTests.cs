using OnnxSlim.TestSupport;
using OnnxSlim.Spectral;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>Argument checks, merge refusals, the spectral matrices and costs.</summary>
public sealed class RewriterTests
{
    [Fact]
    public void Bad_keep_lists_are_refused_with_the_bad_value()
    {
        using var model = Patterns.Build("chain").Model();
        var groups = Harness.Analyze(model);
        var e = Assert.Throws<ArgumentException>(() => ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [0] = [3, 1] }));
        Assert.Contains("3 then 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [0] = [0, 8] }));
        Assert.Contains("channel 8", e.Message);
        e = Assert.Throws<ArgumentException>(() => ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [2] = [0, 1] }));
        Assert.Contains("frozen", e.Message);
        e = Assert.Throws<ArgumentException>(() => ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [9] = [0] }));
        Assert.Contains("no channel group 9", e.Message);
        Assert.Throws<ArgumentException>(() => ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [1] = [] }));
    }

    [Fact]
    public void Merge_leaves_channels_that_are_not_multiples_alone()
    {
        using var model = Patterns.Build("batchnorm").Model();
        var groups = Harness.Analyze(model);
        var result = ChannelPruner.Apply(model, groups, new Dictionary<int, int[]> { [0] = [0, 1, 2, 3, 4, 5] }, new RewriteOptions { Merge = true });
        Assert.Equal(2, result.Removed);
        Assert.Equal(0, result.Merged);
    }

    [Fact]
    public void Merge_through_clip_needs_exact_copies()
    {
        // ReLU6 is not positively homogeneous: relu6(2x) ≠ 2·relu6(x), so only an exact copy is mergeable;
        // the injector finds that out through the merge check and falls back to copying.
        using var model = Patterns.Build("depthwise").Model();
        var groups = Harness.Analyze(model);
        var expand = groups.Single(g => g.DepthwiseProducers.Count == 1 && g.Width == 24);
        var keep = new Dictionary<int, int[]> { [expand.Id] = [.. Enumerable.Range(0, 23)] };
        Assert.Equal(0, RedundancyInjector.MakeMultiples(groups, keep, new Random(1)));
        var w = model.Graph.ResolveWeight(expand.Producers[0].Inputs[1])!.Tensor.ToFloats();
        var removedRow = w.AsSpan(23 * 8, 8).ToArray();
        Assert.Contains(Enumerable.Range(0, 23), i => w.AsSpan(i * 8, 8).SequenceEqual(removedRow));
        var before = Harness.Run(model.ToBytes());
        var result = ChannelPruner.Apply(model, groups, keep, new RewriteOptions { Merge = true });
        Assert.Equal(1, result.Merged);
        Harness.AssertSameOutputs(before, Harness.Run(model.ToBytes()), 1e-4);
    }

    [Fact]
    public void Group_matrix_rows_are_filters_scaled_by_the_following_batchnorm()
    {
        using var model = Patterns.Build("batchnorm").Model();
        var groups = Harness.Analyze(model);
        var g = model.Graph;
        var conv = g.Nodes.First(n => n.OpType == "Conv");
        var bn = g.Nodes.First(n => n.OpType == "BatchNormalization");
        var matrix = GroupMatrices.Build(g, groups[0]);
        Assert.Equal(8, matrix.Rows);
        Assert.Equal(27, matrix.Cols);
        var w = g.ResolveWeight(conv.Inputs[1])!.Tensor.ToFloats();
        var gamma = g.Initializer(bn.Inputs[1])!.ToFloats();
        var variance = g.Initializer(bn.Inputs[4])!.ToFloats();
        for (int j = 0; j < 8; j++)
        {
            double s = gamma[j] / Math.Sqrt(variance[j] + 1e-5f);
            for (int c = 0; c < 27; c++) Assert.Equal(s * w[j * 27 + c], matrix.Row(j)[c], 1e-6);
        }
    }

    [Theory]
    [InlineData("residual", 16, 6 + 8 + 6 * 9)]          // conv3 1×1×6, downsample 1×1×8, block-2 conv 3×3×6
    [InlineData("depthwise", 24, 8 + 9)]                  // expansion 1×1×8 and the depthwise 3×3 kernel
    [InlineData("conv_transpose", 6, 8 * 2 * 2)]         // ConvTranspose weight[:, j]: C_in × kH × kW
    [InlineData("shared_weight", 6, 8 * 3 * 3)]          // the shared weight is stacked once
    [InlineData("gap_gemm", 10, 12)]                      // Gemm transB: row j of B
    [InlineData("transpose_matmul", 10, 8)]              // MatMul: column j of W
    public void Group_matrix_stacks_each_distinct_producer_once(string pattern, int rows, int cols)
    {
        using var model = Patterns.Build(pattern).Model();
        var groups = Harness.Analyze(model);
        var matrices = groups.Prunable.Select(g => GroupMatrices.Build(model.Graph, g)).ToList();
        Assert.Contains(matrices, m => m.Rows == rows && m.Cols == cols);
    }

    [Fact]
    public void Depthwise_costs_are_linear_in_the_group()
    {
        using var model = Patterns.Build("depthwise").Model();
        var groups = Harness.Analyze(model);
        var shapes = OnnxSlim.Runtime.ShapeProbe.Run(model, ModelCost.RequiredValues(model.Graph), []);
        var costs = GroupCosts.Build(groups, shapes);
        var expand = groups.Single(g => g.DepthwiseProducers.Count == 1 && g.Width == 24);
        // The depthwise conv: 24 channels × 16×16 × 3×3 MACs, one linear term.
        var term = Assert.Single(costs.Macs, t => t.OutGroup == expand.Id && t.InGroup == expand.Id);
        Assert.Equal(16 * 16 * 9, term.Coefficient, 1e-9);
        Assert.Empty(costs.Notes);
    }
}
