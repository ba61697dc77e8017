using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;

namespace OnnxSlim.Pruning;

/// <summary>
/// Turns <see cref="LatencyMeasurements"/> into the <see cref="LatencyModel"/> the budget solver reads, for this
/// analysis's channel groups. Every profiled kernel counts with its in-place time: a layer's (Conv, Gemm…) follows
/// its output and input counts as its single-layer timings say, rounded up to the measured step (in proportion when
/// it was not timed alone); any other node's follows the channels of the tensor it writes, in proportion (element-wise
/// work is memory-bound); a layout reorder ONNX Runtime inserted follows the layer input or output of the same shape.
/// What follows no prunable count (frozen parts, and the run's time outside kernels) is fixed.
/// </summary>
internal static class LatencyModelBuilder
{
    public static LatencyModel Build(ModelAnalysis analysis, LatencyMeasurements measured)
    {
        var graph = analysis.Model.Graph;
        var groups = analysis.Groups;
        int step = Math.Max(1, measured.Step);
        var owners = KernelAttribution.Map(graph, measured.Kernels);
        var byNode = new Dictionary<Node, double>(ReferenceEqualityComparer.Instance);
        double fixedMs = measured.OutsideKernelsMilliseconds;
        var unowned = new List<KernelTime>();
        for (int k = 0; k < owners.Length; k++)
        {
            if (owners[k] is { } n) byNode[n] = byNode.GetValueOrDefault(n) + measured.Kernels[k].Milliseconds;
            else unowned.Add(measured.Kernels[k]);
        }

        var layers = new List<LayerLatency>();
        var layerSides = new Dictionary<string, List<KeptChannels>>(StringComparer.Ordinal); // by shape: layer inputs and outputs, for reorders
        foreach (var node in graph.Nodes)
        {
            var shape = KernelAttribution.IsLayer(graph, node) ? LayerShape.Of(graph, node, analysis.Shapes) : null;
            if (shape is not null)
            {
                var outLayout = groups.LayoutOf(node.Outputs[0]);
                var inLayout = groups.LayoutOf(node.Input(0));
                var output = ChannelCounts.Of(groups, outLayout, shape.OutputAxis, shape.Outputs);
                var input = shape.Depthwise ? null : ChannelCounts.Of(groups, inLayout, shape.InputAxis, shape.Inputs);
                if (output is not null && analysis.Shapes.TryGetValue(node.Outputs[0], out var os)) Side(layerSides, os, output);
                if (input is not null) Side(layerSides, shape.InputShape, input);
                if (!byNode.TryGetValue(node, out double ms)) continue;
                if (output is null && input is null) { fixedMs += ms; continue; }
                measured.Layers.TryGetValue(node.Id, out var timed);
                var outCurve = output is null ? null : Curve(timed?.OutWidths, timed?.OutMilliseconds, shape.Outputs, Step(outLayout!, step));
                var inCurve = input is null ? null : Curve(timed?.InWidths, timed?.InMilliseconds, shape.Inputs, Step(inLayout!, step));
                layers.Add(new LayerLatency(node.Id, ms, output, outCurve, input, inCurve));
            }
            else if (byNode.TryGetValue(node, out double ms))
            {
                var layout = node.Outputs.Count > 0 ? groups.LayoutOf(node.Outputs[0]) : null;
                var count = layout is null ? null : ChannelCounts.Of(groups, layout, layout.Axis, Extent(layout));
                if (count is null) fixedMs += ms;
                else layers.Add(new LayerLatency(node.Id, ms, count, WidthCurve.Linear(Extent(layout!), Step(layout!, step))));
            }
        }
        foreach (var kernel in unowned)
        {
            if (kernel.OutputShape is { } s && layerSides.TryGetValue(Key(s), out var sides))
                layers.Add(new LayerLatency(kernel.Name, kernel.Milliseconds, ChannelCounts.Mean(sides), WidthCurve.Linear(s[1], step)));
            else fixedMs += kernel.Milliseconds;
        }
        return new LatencyModel(layers, fixedMs, step);
    }

    private static void Side(Dictionary<string, List<KeptChannels>> sides, long[] shape, KeptChannels count)
    {
        if (shape.Length < 2) return;
        if (!sides.TryGetValue(Key(shape), out var list)) sides[Key(shape)] = list = [];
        list.Add(count);
    }

    private static string Key(long[] shape) => string.Join("x", shape);

    private static long Extent(Rewriter.ChannelLayout layout) => layout.InnerKnown ? layout.Extent : layout.Channels;

    /// <summary>Plain activations round to the measured step; a flattened axis (several elements per channel) does not.</summary>
    private static int Step(Rewriter.ChannelLayout layout, int step) => ChannelCounts.Unit(layout) == 1 ? step : 1;

    private static WidthCurve Curve(double[]? widths, double[]? milliseconds, double extent, int step) =>
        widths is { Length: > 0 } && milliseconds is { Length: > 0 } && widths[^1] == extent
            ? new WidthCurve(widths, milliseconds, step)
            : WidthCurve.Linear(extent, step);
}
