using System.IO.MemoryMappedFiles;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.GraphIO;

/// <summary>
/// Reads tensors whose bytes live outside the .onnx file (ONNX external data: location, offset,
/// length relative to the model's folder). Files are memory-mapped, so a 2 GB model is not read whole.
/// </summary>
public sealed class ExternalDataStore(string baseDirectory) : IDisposable
{
    private readonly Dictionary<string, (MemoryMappedFile? File, long Length)> _files = new();

    public string BaseDirectory { get; } = baseDirectory;

    /// <summary>Where a tensor's bytes are: its entries checked (a location inside the model's folder, offsets and
    /// lengths that are non-negative integers, no key given twice) and the range checked against the file.</summary>
    internal ExternalRange Locate(TensorProto tensor)
    {
        var entries = Entries(tensor);
        string location = entries.Location;
        string path = Path.GetFullPath(Path.Combine(BaseDirectory, location));
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(BaseDirectory)) + Path.DirectorySeparatorChar;
        if (!path.StartsWith(root, StringComparison.Ordinal))
            throw new ModelFormatException($"tensor '{tensor.Name}' points outside the model's folder: external data location '{location}'");
        var (_, fileLength) = Open(path, tensor.Name, location);
        long offset = entries.Offset, length = entries.Length ?? fileLength - offset;
        if (offset > fileLength || length > fileLength - offset)
            throw new ModelFormatException($"tensor '{tensor.Name}' reads bytes {offset}..{offset + length} of '{location}', which has {fileLength}");
        return new ExternalRange(path, offset, length);
    }

    internal ReadOnlyMemory<byte> Read(TensorProto tensor)
    {
        var range = Locate(tensor);
        if (range.Length > Array.MaxLength)
            throw new ModelFormatException($"tensor '{tensor.Name}' has {range.Length} bytes of external data, more than one array holds");
        var (file, _) = Open(range.Path, tensor.Name, range.Path);
        var bytes = new byte[range.Length];
        if (range.Length == 0) return bytes;
        using var view = file!.CreateViewStream(range.Offset, range.Length, MemoryMappedFileAccess.Read);
        view.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The external_data entries of a tensor, parsed as ONNX defines them; no file is touched.</summary>
    internal static ExternalEntries Entries(TensorProto tensor)
    {
        string? location = null;
        long offset = 0;
        long? length = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in tensor.ExternalData)
        {
            if (!seen.Add(entry.Key))
                throw new ModelFormatException($"tensor '{tensor.Name}' gives external data key '{entry.Key}' twice");
            switch (entry.Key)
            {
                case "location": location = entry.Value; break;
                case "offset": offset = Number(tensor, entry); break;
                case "length": length = Number(tensor, entry); break;
            }
        }
        if (string.IsNullOrEmpty(location)) throw new ModelFormatException($"tensor '{tensor.Name}' has external data without a location");
        return new ExternalEntries(location, offset, length);
    }

    private static long Number(TensorProto tensor, StringStringEntryProto entry) =>
        long.TryParse(entry.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v)
            ? v
            : throw new ModelFormatException($"tensor '{tensor.Name}' has external data {entry.Key} '{entry.Value}'; it must be a non-negative integer (bytes)");

    private (MemoryMappedFile? File, long Length) Open(string path, string tensorName, string location)
    {
        lock (_files)
        {
            if (_files.TryGetValue(path, out var open)) return open;
            if (!File.Exists(path)) throw new ModelFormatException($"external data file of tensor '{tensorName}' not found: '{location}'");
            long len = new FileInfo(path).Length;
            // An empty file cannot be mapped; it holds no tensor bytes either (zero-length reads need no view).
            var mmf = len == 0 ? null : MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _files[path] = (mmf, len);
            return (mmf, len);
        }
    }

    public void Dispose()
    {
        foreach (var (file, _) in _files.Values) file?.Dispose();
        _files.Clear();
    }
}

/// <summary>A tensor's external_data entries: location relative to the model's folder, offset, and length (null: to the end of the file).</summary>
public readonly record struct ExternalEntries(string Location, long Offset, long? Length);

/// <summary>Where a tensor's external bytes are, checked against the file.</summary>
public readonly record struct ExternalRange(string Path, long Offset, long Length);
