using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

namespace OnnxSlim.Rewriter.Tests;

public sealed class DebugTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void DumpReal()
    {
        string path = Environment.GetEnvironmentVariable("DUMP_MODEL") ?? "";
        using var model = OnnxModel.Load(path);
        var names = ChannelGroups.ShapeQueries(model.Graph).Concat(ModelCost.RequiredValues(model.Graph)).Distinct().ToList();
        var shapes = ShapeProbe.Run(model, names, []);
        var groups = ChannelGroups.Find(model, shapes);
        foreach (var g in groups) output.WriteLine($"{g}  producers: {string.Join(", ", g.Producers.Take(6).Select(p => p.Name))}");
        var cost = ModelCost.Compute(model.Graph, shapes);
        foreach (var n in cost.Nodes.Where(n => n.Macs > 0).OrderByDescending(n => n.Macs).Take(40))
            output.WriteLine($"{n.Macs / 1e9:F3} G {n.Node} in {groups.LayoutOf(n.Node.Input(0))} out {groups.LayoutOf(n.Node.Outputs[0])}");
    }
}
