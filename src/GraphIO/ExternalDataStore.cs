using System.IO.MemoryMappedFiles;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>
/// Reads tensors whose bytes live outside the .onnx file (ONNX external data: location, offset,
/// length relative to the model's folder). Files are memory-mapped, so a 2 GB model is not read whole.
/// </summary>
public sealed class ExternalDataStore(string baseDirectory) : IDisposable
{
    private readonly Dictionary<string, (MemoryMappedFile File, long Length)> _files = new();

    public string BaseDirectory { get; } = baseDirectory;

    public ReadOnlyMemory<byte> Read(TensorProto tensor)
    {
        string? location = null;
        long offset = 0, length = -1;
        foreach (var entry in tensor.ExternalData)
        {
            switch (entry.Key)
            {
                case "location": location = entry.Value; break;
                case "offset": offset = long.Parse(entry.Value); break;
                case "length": length = long.Parse(entry.Value); break;
            }
        }
        if (location is null) throw new ModelFormatException($"tensor '{tensor.Name}' has external data without a location");
        string path = Path.GetFullPath(Path.Combine(BaseDirectory, location));
        if (!path.StartsWith(Path.GetFullPath(BaseDirectory), StringComparison.Ordinal))
            throw new ModelFormatException($"tensor '{tensor.Name}' points outside the model's folder: {location}");
        var (file, fileLength) = Open(path, tensor.Name);
        if (length < 0) length = fileLength - offset;
        if (offset < 0 || offset + length > fileLength)
            throw new ModelFormatException($"tensor '{tensor.Name}' reads bytes {offset}..{offset + length} of {location}, which has {fileLength}");
        var bytes = new byte[length];
        using var view = file.CreateViewStream(offset, length, MemoryMappedFileAccess.Read);
        view.ReadExactly(bytes);
        return bytes;
    }

    private (MemoryMappedFile, long) Open(string path, string tensorName)
    {
        lock (_files)
        {
            if (_files.TryGetValue(path, out var open)) return open;
            if (!File.Exists(path)) throw new ModelFormatException($"external data file of tensor '{tensorName}' not found: {path}");
            long len = new FileInfo(path).Length;
            var mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _files[path] = (mmf, len);
            return (mmf, len);
        }
    }

    public void Dispose()
    {
        foreach (var (file, _) in _files.Values) file.Dispose();
        _files.Clear();
    }
}
