using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>A bias change planned for one reading layer, per original output channel (before its own outputs are sliced).</summary>
/// <param name="VarianceRatio">Per original output channel, the estimated Var[new output]/Var[original output] (null when not estimated).</param>
internal sealed record BiasDelta(Node Consumer, double[] Delta)
{
    public double[]? VarianceRatio { get; set; }
}

/// <summary>What the data-free compensation of one group plans: weight additions, bias changes, and what it could not do.</summary>
internal sealed record GroupCompensation(List<MergeAddition> Additions, List<BiasDelta> Biases, int Folded, int WithoutStatistics, int Corrected);

/// <summary>
/// Data-free compensation of one group's removed channels (those the exact merge did not take), planned on
/// the original weights. At every layer that reads the group (a ConsumerWeight site), channel j is replaced
/// by Σ c_i·(channel i) where a least-squares fit of its effective filter on the kept ones says so and the
/// path from the filters to that layer preserves the relation (<see cref="ChannelPaths"/>): the layer's
/// input weights get W[:, i] += c_i·W[:, j]. Then what is still missing on average,
/// E[x_j] − Σ c_i·E[x_i], times the layer's weights for channel j (summed over the kernel: exact away from
/// the borders of a zero-padded conv, approximate there), goes into the layer's bias.
/// </summary>
internal static class CompensationPlanner
{
    /// <param name="merged">Removed channels the exact merge takes, with its <paramref name="mergeAdditions"/>.</param>
    public static GroupCompensation Plan(ChannelGroupSet groups, ChannelGroup group, int[] keep, IReadOnlySet<int> merged,
        IReadOnlyList<MergeAddition> mergeAdditions, Func<WeightRef, float[]> floats, RewriteOptions options)
    {
        var none = new GroupCompensation([], [], 0, 0, 0);
        var constants = new GroupConstants(groups.Graph, group, floats);
        var filters = EffectiveFilters.Build(groups.Graph, group, constants, floats, options.OffsetWeight);
        if (filters is null) return none;
        var paths = new ChannelPaths(groups, group, constants, filters);
        var keepSet = keep.ToHashSet();
        var removed = Enumerable.Range(0, group.Width).Where(c => !keepSet.Contains(c) && !merged.Contains(c)).ToArray();
        if (removed.Length == 0) return none;

        bool fold = options.Compensation == Compensation.LeastSquares;
        var fits = fold ? new FilterFit(filters, keep, options.FoldTerms, options.Ridge, removed,
                planned: options.PlannedGrams?.GetValueOrDefault(group.Id)).FitAll(removed, FitsRead(group, paths, removed, options))
            : new (FilterFold? Signed, FilterFold? NonNegative)[removed.Length];

        var additions = new List<MergeAddition>();
        var added = new HashSet<(Tensor, long, long)>();
        var biases = new Dictionary<Node, BiasDelta>();
        var order = new List<BiasDelta>();
        var foldedChannels = new HashSet<int>();
        int withoutStatistics = 0;
        // A reader holding the group in several places (SPPF) would need every place folded alike: left uncompensated.
        foreach (var site in group.Sites.OfType<TensorSite>().Where(s => s.Role == SiteRole.ConsumerWeight && !s.Layout.Repeats(group.Id)))
        {
            var state = paths.At(site.Node.Input(0));
            if (state is null) continue;
            int outAxis = OutputAxis(site);
            for (int r = 0; r < removed.Length; r++)
            {
                int j = removed[r];
                int pj = site.Layout.PositionOf(group.Id, j);
                if (pj < 0) continue;
                var (from, count) = site.Layout.ElementsOf(pj);
                var terms = fold ? Terms(group.Id, site, state, j, fits[r], options) : null;
                if (terms is not null)
                {
                    foldedChannels.Add(j);
                    foreach (var (i, c) in terms)
                    {
                        var (to, _) = site.Layout.ElementsOf(site.Layout.PositionOf(group.Id, i));
                        // A weight several layers read gets each addition once.
                        if (added.Add((site.Weight.Tensor, from, to)))
                            additions.Add(new MergeAddition(site.Weight, site.Weight.Tensor.Dims, site.Axis, from, to, count, c));
                    }
                }
                if (!options.BiasCorrection || outAxis < 0) continue;
                double residual = state.Mean[j];
                if (terms is not null) foreach (var (i, c) in terms) residual -= c * state.Mean[i];
                if (double.IsNaN(residual)) { withoutStatistics++; continue; }
                if (residual == 0) continue;
                if (!biases.TryGetValue(site.Node, out var delta))
                {
                    long outputs = site.Weight.Tensor.Dims[outAxis];
                    biases[site.Node] = delta = new BiasDelta(site.Node, new double[outputs]);
                    order.Add(delta);
                }
                AddColumnSums(floats(site.Weight), site.Weight.Tensor.Dims, site.Axis, from, count, outAxis, residual * Gain(site.Node), delta.Delta);
            }
        }
        if (options.VarianceCorrection)
            foreach (var site in group.Sites.OfType<TensorSite>().Where(s => s.Role == SiteRole.ConsumerWeight && !s.Layout.Repeats(group.Id)))
            {
                int outAxis = OutputAxis(site);
                if (outAxis < 0 || paths.At(site.Node.Input(0)) is not { } state || site.Layout.Groups.Any(g => g != group.Id)) continue;
                var ratio = VarianceRatio(site, group, keepSet, state, [.. mergeAdditions, .. additions], floats, outAxis);
                if (ratio is null) continue;
                if (!biases.TryGetValue(site.Node, out var delta))
                {
                    biases[site.Node] = delta = new BiasDelta(site.Node, new double[ratio.Length]);
                    order.Add(delta);
                }
                delta.VarianceRatio = ratio;
            }
        return new GroupCompensation(additions, order, foldedChannels.Count, withoutStatistics, order.Count);
    }

    /// <summary>Which fits of each removed channel <see cref="Terms"/> will read at the group's readers (<see cref="FitRead"/>).</summary>
    private static FitsNeeded[] FitsRead(ChannelGroup group, ChannelPaths paths, int[] removed, RewriteOptions options)
    {
        var needed = new FitsNeeded[removed.Length];
        foreach (var site in group.Sites.OfType<TensorSite>().Where(s => s.Role == SiteRole.ConsumerWeight && !s.Layout.Repeats(group.Id)))
        {
            if (paths.At(site.Node.Input(0)) is not { } state) continue;
            for (int r = 0; r < removed.Length; r++)
            {
                int j = removed[r];
                if (site.Layout.PositionOf(group.Id, j) >= 0) needed[r] |= FitRead(state.Kind[j], options);
            }
        }
        return needed;
    }

    /// <summary>
    /// Per output o of a reading layer, the estimated Var[new y_o]/Var[y_o]: Σ_c Var[x_c]·‖W'[o, c]‖² over the kept
    /// channels with the folded weights, over the same sum for all channels with the original weights (inputs
    /// taken as independent; a model of channel and tap correlations fitted to the following BatchNorm's
    /// variances was tried on fm_resnet: it moved the ratios by at most ~10% and did not change accuracy).
    /// Null when an input channel has no statistics.
    /// </summary>
    private static double[]? VarianceRatio(TensorSite site, ChannelGroup group, HashSet<int> keep, ChannelState state,
        List<MergeAddition> additions, Func<WeightRef, float[]> floats, int outAxis)
    {
        // Null before any copy: a copy of the reader's weight (VGG-16's first classifier layer: 411 MB) for a ratio
        // that a channel without statistics rules out anyway is garbage at the rewrite's peak.
        for (int c = 0; c < group.Width; c++)
            if (site.Layout.PositionOf(group.Id, c) >= 0 && double.IsNaN(state.Var[c])) return null;
        var original = floats(site.Weight);
        long[] dims = site.Weight.Tensor.Dims;
        var folded = (float[])original.Clone();
        foreach (var run in additions.Where(a => a.Weight.Tensor.Equals(site.Weight.Tensor)).GroupBy(a => a.Axis))
            TensorSlicer.AddScaledAll(folded, dims, run.Key, [.. run.Select(a => (a.From, a.To, a.Count, a.Ratio))]);
        long outputs = dims[outAxis];
        var before = new double[outputs];
        var after = new double[outputs];
        for (int c = 0; c < group.Width; c++)
        {
            int p = site.Layout.PositionOf(group.Id, c);
            if (p < 0) continue;
            double variance = state.Var[c];
            if (double.IsNaN(variance)) return null;
            var (from, count) = site.Layout.ElementsOf(p);
            AddSquareSums(original, dims, site.Axis, from, count, outAxis, variance, before);
            if (keep.Contains(c)) AddSquareSums(folded, dims, site.Axis, from, count, outAxis, variance, after);
        }
        return [.. before.Select((b, o) => b > 0 ? after[o] / b : 1)];
    }

    /// <summary>sums[o] += scale · Σ of the squared weight elements [from, from+count) along axis, per index o along outAxis.</summary>
    private static void AddSquareSums(float[] data, long[] dims, int axis, long from, long count, int outAxis, double scale, double[] sums)
    {
        var slice = TensorSlicer.Take(data, dims, axis, from, count);
        long[] sliceDims = [.. dims];
        sliceDims[axis] = count;
        long inner = TensorSlicer.Product(sliceDims, outAxis + 1, sliceDims.Length), size = sliceDims[outAxis];
        for (long e = 0; e < slice.Length; e++) sums[e / inner % size] += scale * slice[e] * slice[e];
    }

    /// <summary>The fit a reader reads through a path of this kind: the signed one on a linear path (or when asked), the
    /// non-negative one through a ReLU-like nonlinearity, none through a broken path.</summary>
    private static FitsNeeded FitRead(PathKind kind, RewriteOptions options) =>
        kind == PathKind.Broken ? FitsNeeded.None
        : kind == PathKind.Linear || options.SignedThroughNonlinearity ? FitsNeeded.Signed : FitsNeeded.NonNegative;

    /// <summary>The fold of channel j at one reading layer as (kept channel, coefficient) pairs, or null when the path or the fit does not allow one.</summary>
    private static List<(int I, double C)>? Terms(int groupId, TensorSite site, ChannelState state, int j, (FilterFold? Signed, FilterFold? NonNegative) fits, RewriteOptions options)
    {
        var kind = state.Kind[j];
        var read = FitRead(kind, options);
        if (read == FitsNeeded.None) return null;
        var fold = read == FitsNeeded.Signed ? fits.Signed : fits.NonNegative;
        if (fold is null || fold.Match < options.MinMatch) return null;
        var terms = new List<(int, double)>();
        for (int t = 0; t < fold.Kept.Length; t++)
        {
            int i = fold.Kept[t];
            if (site.Layout.PositionOf(groupId, i) < 0) return null;
            if (state.Kind[i] != kind || state.Gain[i] == 0 || !double.IsFinite(state.Gain[i])) return null;
            if (kind == PathKind.Homogeneous && !options.SignedThroughNonlinearity && state.SignAtNonlinearity[i] != state.SignAtNonlinearity[j]) return null;
            double c = fold.Coefficients[t] * state.Gain[j] / state.Gain[i];
            if (!double.IsFinite(c)) return null;
            terms.Add((i, c));
        }
        return terms;
    }

    /// <summary>The axis of a reading layer's weight that indexes its outputs, or -1 when it has no bias to correct.</summary>
    private static int OutputAxis(TensorSite site) =>
        Layers.Weight(site.Node, site.Weight.Tensor.Dims) is { BiasInput: >= 0 } layout ? layout.OutputAxis : -1;

    /// <summary>What multiplies W·x in the layer's output at an average position (Gemm's alpha; a strided ConvTranspose spreads each tap over stride² outputs).</summary>
    private static double Gain(Node node)
    {
        if (node.OpType == "Gemm") return node.GetFloat("alpha", 1f);
        if (node.OpType == "ConvTranspose" && node.GetInts("strides") is { } strides) return 1.0 / strides.Aggregate(1L, (a, b) => a * Math.Max(b, 1));
        return 1;
    }

    /// <summary>delta[o] += scale · Σ of the weight's elements [from, from+count) along axis, per index o along outAxis.</summary>
    private static void AddColumnSums(float[] data, long[] dims, int axis, long from, long count, int outAxis, double scale, double[] delta)
    {
        var slice = TensorSlicer.Take(data, dims, axis, from, count);
        long[] sliceDims = [.. dims];
        sliceDims[axis] = count;
        long inner = TensorSlicer.Product(sliceDims, outAxis + 1, sliceDims.Length), size = sliceDims[outAxis];
        for (long e = 0; e < slice.Length; e++) delta[e / inner % size] += scale * slice[e];
    }
}
