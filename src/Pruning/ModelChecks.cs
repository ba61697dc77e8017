using OnnxSlim.GraphIO;

namespace OnnxSlim.Pruning;

/// <summary>Models onnxslim refuses before any work.</summary>
public static class ModelChecks
{
    private static readonly string[] QuantizedOps = ["ConvInteger", "QLinearConv", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear"];

    /// <summary>Quantized graphs are out of scope: prune the float model, then quantize.</summary>
    public static void RefuseQuantized(OnnxModel model, string? source = null)
    {
        if (model.Graph.Nodes.FirstOrDefault(n => QuantizedOps.Contains(n.OpType)) is { } q)
            throw new PruningException($"{(source is null ? "the model" : $"'{source}'")} is a quantized model ({q.OpType}): prune the float model, then quantize");
    }
}
