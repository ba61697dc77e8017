using System.CommandLine;
using System.Text.Json;
using OnnxSlim.Pruning;
using OnnxSlim.Runtime;
using Spectre.Console;

namespace OnnxSlim.Cli.Commands;

/// <summary>`onnxslim inspect MODEL`: per linear layer its weight, params and MACs at the real input shape; op histogram; groups.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model" };
        var groups = new Option<bool>("--groups") { Description = "List the coupled channel groups: producers, width, prunable or frozen and why" };
        var shape = CommonOptions.Shape();
        var json = CommonOptions.Json();
        var cmd = new Command("inspect", "Show layers, parameters, MACs (at the real input shape) and channel groups") { model, groups, shape, json };
        cmd.SetAction(p =>
        {
            string path = CommonOptions.RequireFile(p.GetValue(model)!, "model");
            using var onnx = ModelFiles.Load(path);
            if (onnx.HasExternalData) onnx.InlineExternalData();
            var analysis = ModelAnalysis.Run(onnx, p.GetValue(shape)!);
            var g = onnx.Graph;
            var inputs = g.RuntimeInputs.Select(i => (i.Name, Shape: analysis.Shapes.GetValueOrDefault(i.Name))).ToList();
            var layers = analysis.Cost.Nodes.Select(c => new
            {
                name = c.Node.Id,
                op = c.Node.OpType,
                weight = c.Node.Inputs.Count > 1 && g.ResolveWeight(c.Node.Inputs[1]) is { } w ? w.Tensor.Dims : null,
                output = analysis.Shapes.GetValueOrDefault(c.Node.Outputs[0]),
                @params = c.Params,
                macs = c.Macs,
            }).ToList();
            var histogram = g.Nodes.GroupBy(n => n.OpType).OrderByDescending(x => x.Count()).ThenBy(x => x.Key).ToDictionary(x => x.Key, x => x.Count());
            var groupRows = analysis.Groups.Select(grp => new
            {
                id = grp.Id,
                producers = grp.Producers.Select(n => n.Id).ToArray(),
                channels = grp.Width,
                prunable = grp.Prunable,
                reason = grp.Reason,
                macs_share = analysis.MacsShare(grp),
            }).ToList();
            double prunableShare = analysis.PrunableMacsShare();
            var coverage = analysis.Coverage();
            var largestFrozen = analysis.Groups.FrozenGroups.Select(grp => new
            {
                id = grp.Id,
                producers = grp.Producers.Select(n => n.Id).ToArray(),
                channels = grp.Width,
                macs = (long)analysis.ProducerMacs(grp),
                reason = grp.Reason,
            }).Where(r => r.macs > 0).OrderByDescending(r => r.macs).Take(10).ToList();

            if (p.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    model = path, opset = onnx.Opset, shapes_from = "ONNX Runtime (one run at the input shapes below)",
                    inputs = inputs.ToDictionary(i => i.Name, i => i.Shape),
                    total_params = analysis.Cost.Params, total_macs = analysis.Cost.Macs, missing_shapes = analysis.Cost.MissingShapes,
                    layers, ops = histogram,
                    groups = p.GetValue(groups) ? groupRows : null,
                    prunable_macs_share = prunableShare,
                    coverage = new
                    {
                        channels_share = coverage.ChannelsShare,
                        output_macs_share = coverage.OutputMacsShare,
                        input_only_macs_share = coverage.InputOnlyMacsShare,
                    },
                    largest_frozen = p.GetValue(groups) ? largestFrozen : null,
                }));
                return ExitCodes.Ok;
            }
            AnsiConsole.WriteLine($"{path}: opset {onnx.Opset}, {g.Nodes.Count} nodes; shapes from ONNX Runtime at " +
                string.Join(", ", inputs.Select(i => $"{i.Name}={(i.Shape is null ? "?" : NamedTensor.FormatShape(i.Shape))}")));
            var table = new Table().AddColumns("layer", "op", "weight", "output", "params", "MACs");
            foreach (var l in layers)
                table.AddRow(Markup.Escape(l.name), l.op, l.weight is null ? "" : Markup.Escape(NamedTensor.FormatShape(l.weight)),
                    l.output is null ? "?" : Markup.Escape(NamedTensor.FormatShape(l.output)), $"{l.@params:N0}", $"{l.macs:N0}");
            AnsiConsole.Write(table);
            AnsiConsole.WriteLine($"total: {analysis.Cost.Params:N0} parameters (every float constant), {analysis.Cost.Macs:N0} MACs ({analysis.Cost.Macs / 1e9:F3} G) in Conv/ConvTranspose/Gemm/MatMul");
            if (analysis.Cost.MissingShapes.Count > 0)
                AnsiConsole.WriteLine($"warning: {analysis.Cost.MissingShapes.Count} layer shapes unknown (counted as 0 MACs)");
            AnsiConsole.WriteLine("ops: " + string.Join(", ", histogram.Select(kv => $"{kv.Key} {kv.Value}")));
            int prunable = analysis.Groups.Count(x => x.Prunable);
            AnsiConsole.WriteLine($"channel groups: {analysis.Groups.Count} ({prunable} prunable, {analysis.Groups.Count - prunable} frozen); prunable groups drive {prunableShare:P1} of MACs");
            AnsiConsole.WriteLine($"coverage: {coverage.ChannelsShare:P1} of channels and {coverage.OutputMacsShare:P1} of MACs have prunable output channels; " +
                $"{coverage.InputOnlyMacsShare:P1} of MACs only read a prunable group");
            if (p.GetValue(groups))
            {
                var gt = new Table().AddColumns("group", "producers", "channels", "MACs share", "status");
                foreach (var r in groupRows)
                    gt.AddRow(r.id.ToString(), Markup.Escape(string.Join(", ", r.producers.Take(3)) + (r.producers.Length > 3 ? $", … ({r.producers.Length})" : "")),
                        r.channels.ToString(), $"{r.macs_share:P1}", Markup.Escape(r.prunable ? "prunable" : $"frozen: {r.reason}"));
                AnsiConsole.Write(gt);
                if (largestFrozen.Count > 0)
                {
                    var ft = new Table().AddColumns("largest frozen group", "producers", "channels", "MACs", "reason");
                    foreach (var r in largestFrozen)
                        ft.AddRow(r.id.ToString(), Markup.Escape(string.Join(", ", r.producers.Take(2)) + (r.producers.Length > 2 ? ", …" : "")),
                            r.channels.ToString(), $"{r.macs:N0} ({(double)r.macs / Math.Max(1, analysis.Cost.Macs):P1})", Markup.Escape(r.reason ?? ""));
                    AnsiConsole.Write(ft);
                }
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
