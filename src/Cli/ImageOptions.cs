using System.CommandLine;
using System.Globalization;
using OnnxSlim.Calibration;

namespace OnnxSlim.Cli;

/// <summary>The `--image-*` options: how a folder of calibration images becomes the model's input.</summary>
public sealed class ImageOptions
{
    private readonly Option<string?> _size = new("--image-size") { Description = "Images resized to H,W (default: the model input's static size)" };
    private readonly Option<string> _resize = new("--image-resize") { Description = "stretch (exact size), crop (cover, centre crop) or pad (fit, top-left, zero padding)", DefaultValueFactory = _ => "stretch" };
    private readonly Option<double> _scale = new("--image-scale") { Description = "Pixel values (0-255) are multiplied by this first", DefaultValueFactory = _ => 1.0 / 255 };
    private readonly Option<string> _mean = new("--image-mean") { Description = "Subtracted after scaling: one value or one per channel, e.g. 0.485,0.456,0.406", DefaultValueFactory = _ => "0" };
    private readonly Option<string> _std = new("--image-std") { Description = "Divided by after the mean: one value or one per channel, e.g. 0.229,0.224,0.225", DefaultValueFactory = _ => "1" };
    private readonly Option<string?> _channels = new("--image-channels") { Description = "rgb, bgr or gray (default: rgb, gray for 1-channel inputs)" };
    private readonly Option<string?> _layout = new("--image-layout") { Description = "nchw or nhwc (default: read from the model input's shape)" };

    public static ImageOptions Create() => new();

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _size, _resize, _scale, _mean, _std, _channels, _layout }) command.Options.Add(option);
    }

    public ImagePreprocessing Parse(ParseResult p)
    {
        (int? height, int? width) = p.GetValue(_size) is { } size ? ParseSize(size) : (null, null);
        var result = new ImagePreprocessing
        {
            Height = height,
            Width = width,
            Resize = CommonOptions.ParseEnum<ResizeMode>(p.GetValue(_resize)!, "--image-resize"),
            Scale = p.GetValue(_scale),
            Mean = Numbers(p.GetValue(_mean)!, "--image-mean"),
            Std = Numbers(p.GetValue(_std)!, "--image-std"),
            Channels = p.GetValue(_channels) is { } c ? CommonOptions.ParseEnum<ChannelOrder>(c, "--image-channels") : null,
            Layout = p.GetValue(_layout) is { } l ? CommonOptions.ParseEnum<TensorLayout>(l, "--image-layout") : null,
        };
        CommonOptions.Check(result.Check);
        return result;
    }

    private static (int?, int?) ParseSize(string text)
    {
        var parts = text.Split(',', 'x', 'X');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int h) &&
            int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int w) && h > 0 && w > 0)
            return (h, w);
        throw new CliError($"--image-size must be H,W with positive integers, got '{text}'");
    }

    private static double[] Numbers(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
                throw new CliError($"{option} must be numbers separated by commas, got '{text}'");
        return values;
    }
}
