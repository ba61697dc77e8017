using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// Whether a pass's session lets ONNX Runtime prepack its weights. Prepacking copies each weight into the layout its kernel
/// reads, once per session: it pays off over a pass's many batches of convs (ResNet-50's reconstruction without it: +7 CPU s),
/// but a fully connected weight of hundreds of MB is then held twice for a few batches of a few rows each. VGG-16-bn −70 %
/// with 64 images: its classifier's pass held fc1's 385 MB as the sub-model's bytes, ONNX Runtime's copy and a prepacked one
/// (peak 4,788 MiB at that pass; 4,197–4,407 MiB without the prepacked copy).
/// </summary>
internal static class WeightPrepacking
{
    /// <summary>A Gemm or MatMul weight from this size (as float32) turns prepacking off for the session holding it.</summary>
    public const long LargeMatMulWeightBytes = 64L << 20;

    /// <summary>False when one of <paramref name="nodes"/> is a Gemm or MatMul reading an initializer of <paramref name="limit"/> bytes or more.</summary>
    public static bool Worthwhile(Graph graph, IEnumerable<Node> nodes, long limit = LargeMatMulWeightBytes) =>
        !nodes.Any(n => n.OpType is "Gemm" or "MatMul"
            && n.Inputs.Take(2).Any(v => graph.Initializer(v) is { } w && w.ElementCount * sizeof(float) >= limit));
}
