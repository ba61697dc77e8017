namespace OnnxSlim.Calibration;

/// <summary>How an image is fitted to the model's input size.</summary>
public enum ResizeMode
{
    /// <summary>Scaled to exactly the input size, aspect ratio ignored.</summary>
    Stretch,

    /// <summary>Scaled to cover the input size, then centre-cropped (classifiers: torchvision's Resize + CenterCrop).</summary>
    Crop,

    /// <summary>Scaled to fit inside the input size, placed top-left, the rest zero after normalisation (text lines, pages).</summary>
    Pad,
}

public enum ChannelOrder { Rgb, Bgr, Gray }

public enum TensorLayout { Nchw, Nhwc }

/// <summary>
/// How an image becomes a model input, in the style of ONNX Runtime's and OpenVINO's calibration readers:
/// resize to the input's H×W, then value = (pixel × <see cref="Scale"/> − mean) / std per channel, in
/// <see cref="Channels"/> order and <see cref="Layout"/>. Null members are read from the model input
/// (H, W, layout, gray for one channel).
/// </summary>
public sealed record ImagePreprocessing
{
    public int? Height { get; init; }
    public int? Width { get; init; }
    public ResizeMode Resize { get; init; } = ResizeMode.Stretch;
    public double Scale { get; init; } = 1.0 / 255;

    /// <summary>Per channel (in <see cref="Channels"/> order), or one value for all; applied after <see cref="Scale"/>.</summary>
    public IReadOnlyList<double> Mean { get; init; } = [0];
    public IReadOnlyList<double> Std { get; init; } = [1];
    public ChannelOrder? Channels { get; init; }
    public TensorLayout? Layout { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad value.</summary>
    public void Check()
    {
        if (Height is <= 0) throw new ArgumentException($"must be positive, got {Height}", nameof(Height));
        if (Width is <= 0) throw new ArgumentException($"must be positive, got {Width}", nameof(Width));
        if (!(Scale > 0) || !double.IsFinite(Scale)) throw new ArgumentException($"must be a positive number, got {Scale}", nameof(Scale));
        if (Mean.Count is not (1 or 3) || Mean.Any(m => !double.IsFinite(m))) throw new ArgumentException($"needs 1 or 3 finite values, got [{string.Join(", ", Mean)}]", nameof(Mean));
        if (Std.Count is not (1 or 3) || Std.Any(s => !(s > 0) || !double.IsFinite(s))) throw new ArgumentException($"needs 1 or 3 positive values, got [{string.Join(", ", Std)}]", nameof(Std));
    }
}
