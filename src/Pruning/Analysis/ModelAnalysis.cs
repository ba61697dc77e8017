using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// What every command needs to know about a model before planning: concrete shapes (one ONNX Runtime run
/// at the real input shape), the coupled channel groups, and MACs/params in total and per group.
/// </summary>
public sealed class ModelAnalysis
{
    private ModelAnalysis(OnnxModel model, IReadOnlyDictionary<string, long[]> shapes, ChannelGroupSet groups, ModelCost cost, GroupCosts groupCosts)
    {
        Model = model;
        Shapes = shapes;
        Groups = groups;
        Cost = cost;
        GroupCosts = groupCosts;
    }

    public OnnxModel Model { get; }
    public IReadOnlyDictionary<string, long[]> Shapes { get; }
    public ChannelGroupSet Groups { get; }
    public ModelCost Cost { get; }
    public GroupCosts GroupCosts { get; }

    /// <param name="thenRun">Runs once more on the shape probe's session of the model before it closes (see <see cref="ShapeProbe.Run"/>).</param>
    public static ModelAnalysis Run(OnnxModel model, IReadOnlyList<string> shapeOverrides, Action<ModelRunner, IReadOnlyList<string>>? thenRun = null)
    {
        var shapes = ProbeShapes(model, shapeOverrides, thenRun);
        var groups = ChannelGroups.Find(model, shapes);
        return new ModelAnalysis(model, shapes, groups, ModelCost.Compute(model.Graph, shapes), GroupCosts.Build(groups, shapes));
    }

    public static Dictionary<string, long[]> ProbeShapes(OnnxModel model, IReadOnlyList<string> shapeOverrides, Action<ModelRunner, IReadOnlyList<string>>? thenRun = null)
    {
        var wanted = ChannelGroups.ShapeQueries(model.Graph).Concat(ModelCost.RequiredValues(model.Graph)).Distinct();
        return ShapeProbe.Run(model, wanted, shapeOverrides, thenRun: thenRun);
    }

    /// <summary>MACs of the layers each group's keep count scales (its share of the model's total).</summary>
    public double MacsShare(ChannelGroup group)
    {
        if (Cost.Macs == 0) return 0;
        double sum = GroupCosts.Macs.Where(t => t.OutGroup == group.Id || t.InGroup == group.Id).Sum(t => Full(t));
        return sum / Cost.Macs;
    }

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
