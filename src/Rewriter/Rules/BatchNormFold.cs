using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// BatchNormalization at inference, y = γ·(x − μ)/√(σ² + ε) + β, as the per-channel affine y = s·x + t with
/// s = γ/√(σ² + ε) and t = β − s·μ. The one place that reads the node's ε.
/// </summary>
public static class BatchNormFold
{
    /// <summary>The node's ε (ONNX default 1e-5). Float, as stored: callers that add it to float data keep float sums.</summary>
    public static float Epsilon(Node batchNorm) => batchNorm.GetFloat("epsilon", 1e-5f);

    /// <summary>s = γ/√(σ² + ε).</summary>
    public static double Scale(double gamma, double variance, double epsilon) => gamma / Math.Sqrt(variance + epsilon);

    /// <summary>Folds the node into a running affine: scale ← s·scale, offset ← s·(offset − μ) + β (an empty offset: the scale only).</summary>
    public static void Fold(Node batchNorm, ReadOnlySpan<double> gamma, ReadOnlySpan<double> beta, ReadOnlySpan<double> mean, ReadOnlySpan<double> variance,
        Span<double> scale, Span<double> offset)
    {
        if (gamma.Length != scale.Length || variance.Length != scale.Length
            || (offset.Length > 0 && (offset.Length != scale.Length || beta.Length != scale.Length || mean.Length != scale.Length)))
            throw new ArgumentException($"{batchNorm}: parameters of {gamma.Length}/{beta.Length}/{mean.Length}/{variance.Length} channels for a chain of {scale.Length}");
        double epsilon = Epsilon(batchNorm);
        for (int c = 0; c < scale.Length; c++)
        {
            double s = Scale(gamma[c], variance[c], epsilon);
            scale[c] *= s;
            if (offset.Length > 0) offset[c] = s * (offset[c] - mean[c]) + beta[c];
        }
    }
}
