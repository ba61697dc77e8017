using System.Reflection;
using OnnxSlim.GraphIO;
using OnnxSlim.Pruning;

namespace OnnxSlim.Cli;

/// <summary>Loads the user's model (or the embedded demo) and refuses what onnxslim cannot prune.</summary>
public static class ModelFiles
{
    public const string DemoName = "demo_cnn.onnx";

    public static OnnxModel Load(string path)
    {
        var model = OnnxModel.Load(path);
        try
        {
            ModelChecks.Check(model, path);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A model's bytes for ONNX Runtime (bench, validate): read and checked as every command reads models, with
    /// external data pulled inline, since a session made from bytes cannot find files beside the model.
    /// </summary>
    public static byte[] RuntimeBytes(string path)
    {
        using var model = OnnxModel.Load(path);
        return RuntimeBytes(model, path);
    }

    /// <summary>As <see cref="RuntimeBytes(string)"/>, for a model already loaded from <paramref name="path"/> (its external data is pulled inline).</summary>
    public static byte[] RuntimeBytes(OnnxModel model, string path)
    {
        if (!model.HasExternalData) return File.ReadAllBytes(path);
        model.InlineExternalData();
        return model.ToBytes();
    }

    /// <summary>The demo model shipped inside the tool, written to a temp file so every path below works on files.</summary>
    public static string ExtractDemo()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(DemoName)
            ?? throw new CliError("this build has no embedded demo model; give a MODEL argument");
        string path = Path.Combine(Path.GetTempPath(), $"onnxslim-{DemoName}");
        // Same bytes every time: write aside and rename, so concurrent runs never read a half-written file.
        string tmp = $"{path}.{Environment.ProcessId}.tmp";
        using (var file = File.Create(tmp)) stream.CopyTo(file);
        File.Move(tmp, path, overwrite: true);
        return path;
    }
}
