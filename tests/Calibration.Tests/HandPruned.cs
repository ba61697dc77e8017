using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration.Tests;

/// <summary>
/// The re-fit list for models these tests prune by hand (no channel groups): every Conv, ConvTranspose, Gemm and MatMul whose
/// weight lost input channels, paired with the original node of the same name, with the kept outputs given.
/// </summary>
public static class HandPruned
{
    public static List<RefitLayer> Layers(OnnxModel original, OnnxModel pruned, IReadOnlyDictionary<string, int[]> keptByNode)
    {
        var layers = new List<RefitLayer>();
        foreach (var node in pruned.Graph.Nodes)
        {
            if (node.OpType is not ("Conv" or "Gemm" or "MatMul" or "ConvTranspose")) continue;
            var on = original.Graph.Nodes.Single(n => n.Id == node.Id);
            if (pruned.Graph.ResolveWeight(node.Input(1)) is not { } w || original.Graph.ResolveWeight(on.Input(1)) is not { } ow) continue;
            if (InputDim(node, w.Tensor.Dims) < InputDim(on, ow.Tensor.Dims))
                layers.Add(new RefitLayer(node, on, keptByNode.GetValueOrDefault(node.Id)));
        }
        return layers;
    }

    private static long InputDim(Node node, long[] dims) => node.OpType switch
    {
        "Conv" => dims[1],
        "Gemm" => node.GetInt("transB", 0) != 0 ? dims[1] : dims[0],
        _ => dims[0],
    };
}
