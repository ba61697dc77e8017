namespace OnnxSlim.Recovery.Tests;

/// <summary>The repository's Fashion-MNIST fixtures (trained ResNet-20, calibration and held-out test images).</summary>
public static class Fixtures
{
    public static string Directory { get; } = Find();

    public static string FusedResnet => Path.Combine(Directory, "fm_resnet_fused.onnx");
    public static string BnResnet => Path.Combine(Directory, "demo_cnn.onnx");
    public static string CalibX => Path.Combine(Directory, "fm_calib_x.npy");
    public static string TestX => Path.Combine(Directory, "fm_test_x_500.npy");
    public static string TestY => Path.Combine(Directory, "fm_test_y_500.npy");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxSlim.sln")))
                return Path.Combine(dir.FullName, "fixtures");
        throw new InvalidOperationException("OnnxSlim.sln not found above " + AppContext.BaseDirectory);
    }
}
