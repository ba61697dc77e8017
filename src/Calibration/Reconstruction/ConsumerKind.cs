namespace OnnxSlim.Calibration;

/// <summary>The linear operators whose weights <see cref="Reconstruction"/> re-fits.</summary>
internal enum ConsumerKind
{
    Conv,
    Gemm,
    MatMul,
}
