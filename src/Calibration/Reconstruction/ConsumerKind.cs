namespace OnnxSlim.Calibration;

/// <summary>The linear operators whose weights <see cref="Reconstruction"/> re-fits.</summary>
internal enum ConsumerKind
{
    Conv,
    Gemm,
    MatMul,

    /// <summary>Only with kernel = stride and no padding (a 1×1 conv to C_out·k² outputs, then depth-to-space; see <see cref="ConsumerUnit.Block"/>).</summary>
    ConvTranspose,
}
