using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>An ONNX model file in memory: its ModelProto and the main graph over it.</summary>
public sealed class OnnxModel : IDisposable
{
    private readonly ExternalDataStore? _external;

    private OnnxModel(ModelProto proto, string? directory)
    {
        Proto = proto;
        Directory = directory;
        _external = directory is null ? null : new ExternalDataStore(directory);
        Graph = new Graph(proto.Graph, _external);
    }

    public ModelProto Proto { get; }
    public Graph Graph { get; }

    /// <summary>Folder that external-data locations are relative to (null for models built in memory).</summary>
    public string? Directory { get; }

    public long Opset => Proto.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 0;

    public bool HasExternalData => Proto.Graph.Initializer.Any(t => t.DataLocation == TensorProto.Types.DataLocation.External);

    public static OnnxModel Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelFormatException(System.IO.Directory.Exists(path) ? $"'{path}' is a directory, not a model file" : $"model file not found: {path}");
        ModelProto proto;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            if (stream.Length == 0) throw new ModelFormatException($"'{path}' is empty");
            proto = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ModelFormatException($"'{path}' is not a readable ONNX model (truncated or corrupt protobuf: {FirstLine(e.Message)})", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"cannot read '{path}': {FirstLine(e.Message)}", e);
        }
        Check(proto, path);
        return new OnnxModel(proto, Path.GetDirectoryName(Path.GetFullPath(path)));
    }

    public static OnnxModel FromBytes(ReadOnlySpan<byte> bytes, string? directory = null)
    {
        ModelProto proto;
        try { proto = ModelProto.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e) { throw new ModelFormatException($"not a readable ONNX model: {FirstLine(e.Message)}", e); }
        Check(proto, "<bytes>");
        return new OnnxModel(proto, directory);
    }

    public static OnnxModel FromProto(ModelProto proto, string? directory = null)
    {
        Check(proto, "<in memory>");
        return new OnnxModel(proto, directory);
    }

    /// <summary>A deep copy with external data loaded inline, safe to edit without touching this one.</summary>
    public OnnxModel Clone()
    {
        var copy = Proto.Clone();
        var model = new OnnxModel(copy, Directory);
        return model;
    }

    /// <summary>Tensor payloads pulled into the file, so the model no longer depends on side files.</summary>
    public void InlineExternalData()
    {
        foreach (var t in Graph.Initializers.Values.Where(t => t.IsExternal).ToList())
        {
            if (t.IsFloating) t.SetFloats(t.Dims, t.ToFloats());
            else if (t.DataType is DataType.Int64 or DataType.Int32) t.SetInt64s(t.Dims, t.ToInt64s());
            else throw new ModelFormatException($"external tensor '{t.Name}' of type {DataType.Name(t.DataType)} cannot be inlined");
        }
        Graph.Reindex();
    }

    public byte[] ToBytes() => Proto.ToByteArray();

    /// <summary>Writes via a temp file and rename, so a failure never leaves a partial model behind.</summary>
    public void Save(string path)
    {
        long size = Proto.CalculateSize();
        if (size > int.MaxValue - 1024)
            throw new ModelFormatException($"model is {size} bytes, over protobuf's 2 GB limit; external data output is not supported yet");
        string full = Path.GetFullPath(path);
        string tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                Proto.WriteTo(stream);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static void Check(ModelProto proto, string source)
    {
        if (proto.Graph is null || proto.IrVersion <= 0 || proto.OpsetImport.Count == 0)
            throw new ModelFormatException($"'{source}' is not an ONNX model (no graph, IR version or opset)");
        if (proto.Graph.Node.Count == 0)
            throw new ModelFormatException($"'{source}' has an empty graph");
        foreach (var n in proto.Graph.Node)
            if (string.IsNullOrEmpty(n.OpType))
                throw new ModelFormatException($"'{source}' is not an ONNX model (a node has no operator type)");
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    public void Dispose() => _external?.Dispose();
}
