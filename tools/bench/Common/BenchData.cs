namespace OnnxSlim.Bench;

/// <summary>Where benchmark inputs live: the shared Fashion-MNIST fixtures beside the repository, and the model cache.</summary>
public static class BenchData
{
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>`../shared/fixtures/fashion-mnist` beside the repository (all 10,000 test images).</summary>
    public static string FashionMnist(BenchArgs args) =>
        args.Option("--fixtures") ?? Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures", "fashion-mnist"));

    /// <summary>`$ONNXSLIM_CACHE` (default ~/.cache/onnxslim): models from tools/models, data from tools/data.</summary>
    public static string Cache => Environment.GetEnvironmentVariable("ONNXSLIM_CACHE") is { Length: > 0 } c
        ? c : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "onnxslim");

    public static string Model(string name) => Path.Combine(Cache, "models", name + ".onnx");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxSlim.sln"))) return dir.FullName;
        throw new InvalidOperationException("OnnxSlim.sln not found above " + AppContext.BaseDirectory);
    }
}
