namespace OnnxSlim.Recovery.Tests;

/// <summary>The shared Fashion-MNIST fixtures (trained ResNet-20, calibration and test images).</summary>
public static class Fixtures
{
    public static string Directory { get; } = Find();

    public static string FusedResnet => Path.Combine(Directory, "fm_resnet_fused.onnx");
    public static string BnResnet => Path.Combine(Directory, "fm_resnet_bn.onnx");
    public static string CalibX => Path.Combine(Directory, "calib_x.npy");
    public static string TestX => Path.Combine(Directory, "test_x.npy");
    public static string TestY => Path.Combine(Directory, "test_y.npy");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxSlim.sln")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "fixtures", "fashion-mnist"));
        throw new InvalidOperationException("OnnxSlim.sln not found above " + AppContext.BaseDirectory);
    }
}
