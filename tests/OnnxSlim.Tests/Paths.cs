namespace OnnxSlim.Tests;

/// <summary>Where the repository, its fixtures and scratch files are, from a test's point of view.</summary>
public static class Paths
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Fixtures => Path.Combine(RepoRoot, "fixtures");
    /// <summary>The trained Fashion-MNIST ResNet-20 with BatchNorm nodes (also the embedded demo).</summary>
    public static string FmResnetBn => Path.Combine(Fixtures, "demo_cnn.onnx");
    public static string FmResnetFused => Path.Combine(Fixtures, "fm_resnet_fused.onnx");
    public static string CalibX => Path.Combine(Fixtures, "fm_calib_x.npy");
    public static string DemoModel => Path.Combine(Fixtures, "demo_cnn.onnx");

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "onnxslim-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxSlim.sln"))) return dir.FullName;
        throw new InvalidOperationException("OnnxSlim.sln not found above " + AppContext.BaseDirectory);
    }
}
