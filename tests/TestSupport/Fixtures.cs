namespace OnnxSlim.TestSupport;

/// <summary>The repository's fixtures (fixtures/README.md) and scratch folders, from a test's point of view.</summary>
public static class Fixtures
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Directory => Path.Combine(RepoRoot, "fixtures");

    /// <summary>The trained Fashion-MNIST ResNet-20 with BatchNorm nodes (also the embedded demo).</summary>
    public static string BnResnet => Path.Combine(Directory, "demo_cnn.onnx");
    public static string FusedResnet => Path.Combine(Directory, "fm_resnet_fused.onnx");
    public static string DemoModel => BnResnet;

    /// <summary>256 training images, float32 [256,1,28,28].</summary>
    public static string CalibX => Path.Combine(Directory, "fm_calib_x.npy");

    /// <summary>The first 500 test images and labels; never used for calibration.</summary>
    public static string TestX => Path.Combine(Directory, "fm_test_x_500.npy");
    public static string TestY => Path.Combine(Directory, "fm_test_y_500.npy");

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "onnxslim-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxSlim.sln"))) return dir.FullName;
        throw new InvalidOperationException("OnnxSlim.sln not found above " + AppContext.BaseDirectory);
    }
}
