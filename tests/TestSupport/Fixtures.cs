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

    /// <summary>A new empty folder; all of this test process's folders are removed when it exits.</summary>
    public static string TempDir()
    {
        string dir = Path.Combine(ScratchRoot.Value, Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }

    // One folder per test process, so a run removes its own scratch (432 MB had piled up from earlier runs) and
    // never a folder another test process is still using.
    private static readonly Lazy<string> ScratchRoot = new(() =>
    {
        string root = Path.Combine(Path.GetTempPath(), "onnxslim-tests", Environment.ProcessId.ToString());
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { System.IO.Directory.Delete(root, recursive: true); }
            catch (IOException) { } // a file still open: the OS's temporary-folder cleaning takes the rest
            catch (UnauthorizedAccessException) { }
        };
        return root;
    });

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxSlim.sln"))) return dir.FullName;
        throw new InvalidOperationException("OnnxSlim.sln not found above " + AppContext.BaseDirectory);
    }
}
