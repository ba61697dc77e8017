using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// What every command needs to know about a model before planning: concrete shapes (one ONNX Runtime run
/// at the real input shape), the coupled channel groups, and MACs/params in total and per group.
/// </summary>
/// <summary>Shares of channels and MACs pruning reaches (see <see cref="ModelAnalysis.Coverage"/>).</summary>
public sealed record PruningCoverage(double ChannelsShare, double OutputMacsShare, double InputOnlyMacsShare);

public sealed class ModelAnalysis(OnnxModel model, IReadOnlyDictionary<string, long[]> shapes, ChannelGroupSet groups, ModelCost cost, GroupCosts groupCosts)
{
    public OnnxModel Model { get; } = model;
    public IReadOnlyDictionary<string, long[]> Shapes { get; } = shapes;
    public ChannelGroupSet Groups { get; } = groups;
    public ModelCost Cost { get; } = cost;
    public GroupCosts GroupCosts { get; } = groupCosts;

    /// <param name="thenRun">Runs with the probed model once the shape probe is done (see <see cref="ShapeProbe.Run"/>).</param>
    /// <param name="alsoCopied">Values the probe's run copies out for <paramref name="thenRun"/> besides the model's outputs.</param>
    /// <remarks>Folds the model's computed weights first (<see cref="WeightFolds"/>), so that inspect and analyze show the
    /// groups a prune finds; the pruner folds its original before copying it, so this finds none there.</remarks>
    public static ModelAnalysis Run(OnnxModel model, IReadOnlyList<string> shapeOverrides, Action<ProbedModel>? thenRun = null, IReadOnlyList<string>? alsoCopied = null)
    {
        WeightFolds.Apply(model);
        var shapes = ProbeShapes(model, shapeOverrides, thenRun, alsoCopied);
        var groups = ChannelGroups.Find(model, shapes);
        return new ModelAnalysis(model, shapes, groups, ModelCost.Compute(model.Graph, shapes), GroupCosts.Build(groups, shapes));
    }

    public static Dictionary<string, long[]> ProbeShapes(OnnxModel model, IReadOnlyList<string> shapeOverrides, Action<ProbedModel>? thenRun = null,
        IReadOnlyList<string>? alsoCopied = null)
    {
        return ShapeProbe.Run(model, ProbedValues(model.Graph), shapeOverrides, thenRun: thenRun, alsoCopied: alsoCopied);
    }

    /// <summary>
    /// Of <see cref="ProbedValues"/>, those whose shapes <see cref="ModelCost.Compute"/> reads (a layer's data inputs and
    /// output): the cost from these shapes is the cost from all of them, and a run that outputs fewer values keeps fewer
    /// alive (keypointrcnn's pruned model: 1950 → 1783 MiB at the peak).
    /// </summary>
    public static IReadOnlyList<string> CostValues(Graph graph)
    {
        var read = graph.Nodes.Where(Layers.IsLayer).SelectMany(n => new[] { n.Input(0), n.Input(1), n.Outputs[0] }).ToHashSet(StringComparer.Ordinal);
        return [.. ProbedValues(graph).Where(read.Contains)];
    }

    /// <summary>The values whose shapes the analysis reads: the channel groups' queries and the cost's layers.</summary>
    public static IReadOnlyList<string> ProbedValues(Graph graph) =>
        [.. ChannelGroups.ShapeQueries(graph).Concat(ModelCost.RequiredValues(graph)).Distinct()];

    /// <summary>Positions (H·W…) of the largest map the group's producers write; 0 when not known.</summary>
    public long MapPixels(ChannelGroup group)
    {
        long largest = 0;
        foreach (var producer in group.Producers)
            if (Shapes.GetValueOrDefault(producer.Outputs[0]) is { Length: > 2 } dims && dims.All(d => d > 0))
                largest = Math.Max(largest, dims[2..].Aggregate(1L, (a, b) => a * b));
        return largest;
    }

    /// <summary>MACs of the layers each group's keep count scales (its share of the model's total).</summary>
    public double MacsShare(ChannelGroup group)
    {
        if (Cost.Macs == 0) return 0;
        double sum = GroupCosts.Macs.Where(t => t.OutGroup == group.Id || t.InGroup == group.Id).Sum(t => Full(t));
        return sum / Cost.Macs;
    }

    /// <summary>
    /// What pruning reaches: the share of channels (each channel group once) that are prunable; the share of MACs in
    /// layers whose output channels are prunable (a layer writing several groups counts by its prunable fraction);
    /// and the share of MACs in layers that only read a prunable group (their outputs stay whole, so they shrink in
    /// one dimension only).
    /// </summary>
    public PruningCoverage Coverage()
    {
        double channels = Groups.Sum(g => (double)g.Width), prunableChannels = Groups.Prunable.Sum(g => (double)g.Width);
        double total = 0, output = 0, inputOnly = 0;
        foreach (var cost in Cost.Nodes.Where(c => c.Macs > 0))
        {
            total += cost.Macs;
            double writes = PrunableFraction(Groups.LayoutOf(cost.Node.Outputs[0]));
            bool reads = Groups.LayoutOf(cost.Node.Input(0)) is { } input && input.Groups.Any(g => Groups[g].Prunable);
            output += cost.Macs * writes;
            if (reads) inputOnly += cost.Macs * (1 - writes);
        }
        return new PruningCoverage(channels == 0 ? 0 : prunableChannels / channels, total == 0 ? 0 : output / total, total == 0 ? 0 : inputOnly / total);
    }

    /// <summary>MACs of the layers that write a group's channels (a layer writing several groups counts by its share).</summary>
    public double ProducerMacs(ChannelGroup group)
    {
        double macs = 0;
        foreach (var cost in Cost.Nodes.Where(c => c.Macs > 0 && group.Producers.Contains(c.Node)))
            if (Groups.LayoutOf(cost.Node.Outputs[0]) is { } layout)
                macs += cost.Macs * (double)layout.Segments.Where(s => s.Group == group.Id).Sum(s => s.Length) / layout.Channels;
        return macs;
    }

    private double PrunableFraction(Rewriter.ChannelLayout? layout) =>
        layout is null ? 0 : (double)layout.Segments.Where(s => Groups[s.Group].Prunable).Sum(s => s.Length) / layout.Channels;

    /// <summary>Share of the group-cost MACs in layers that read or write at least one prunable group.</summary>
    public double PrunableMacsShare()
    {
        double covered = 0, total = 0;
        foreach (var t in GroupCosts.Macs)
        {
            double full = Full(t);
            total += full;
            if ((t.OutGroup >= 0 && Groups[t.OutGroup].Prunable) || (t.InGroup >= 0 && Groups[t.InGroup].Prunable)) covered += full;
        }
        return total == 0 ? 0 : covered / total;
    }

    private double Full(Spectral.CostTerm t)
    {
        double k(int g) => g < 0 ? 1 : Groups[g].Width;
        return t.OutGroup == t.InGroup && t.OutGroup >= 0 ? t.Coefficient * k(t.OutGroup) : t.Coefficient * k(t.OutGroup) * k(t.InGroup);
    }
}
