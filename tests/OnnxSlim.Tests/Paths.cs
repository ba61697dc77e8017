namespace OnnxSlim.Tests;

/// <summary>Where the repository, the shared fixtures and scratch files are, from a test's point of view.</summary>
public static class Paths
{
    public static string RepoRoot { get; } = FindRoot();

    public static string SharedFixtures => Path.Combine(RepoRoot, "..", "shared", "fixtures", "fashion-mnist");
    public static string FmResnetBn => Path.Combine(SharedFixtures, "fm_resnet_bn.onnx");
    public static string FmResnetFused => Path.Combine(SharedFixtures, "fm_resnet_fused.onnx");
    public static string CalibX => Path.Combine(SharedFixtures, "calib_x.npy");
    public static string DemoModel => Path.Combine(RepoRoot, "fixtures", "demo_cnn.onnx");

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
