using System.IO.MemoryMappedFiles;
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

    internal ModelProto Proto { get; }
    public Graph Graph { get; }

    /// <summary>Folder that external-data locations are relative to (null for models built in memory).</summary>
    public string? Directory { get; }

    public long IrVersion => Proto.IrVersion;

    /// <summary>Protobuf's size of the model as it is in memory (32-bit: wraps past 2 GB; for reports).</summary>
    public long ProtoBytes => Proto.CalculateSize();

    public long Opset => Proto.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 0;

    /// <summary>Full paths of the files this model's external data is read from.</summary>
    public IReadOnlyList<string> ExternalDataFiles => Directory is null ? [] :
        [.. Proto.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External)
            .Select(t => Path.GetFullPath(Path.Combine(Directory, ExternalDataStore.Entries(t).Location))).Distinct()];

    public bool HasExternalData => Proto.Graph.Initializer.Any(t => t.DataLocation == TensorProto.Types.DataLocation.External);

    /// <summary>Largest protobuf message: the length of any message is a 32-bit signed count.</summary>
    public const long MaxProtobufBytes = int.MaxValue;

    public static OnnxModel Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelFormatException(System.IO.Directory.Exists(path) ? $"'{path}' is a directory, not a model file" : $"model file not found: {path}");
        ModelProto proto;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            long length = stream.Length;
            if (length == 0) throw new ModelFormatException($"'{path}' is empty");
            if (length > MaxProtobufBytes)
                throw new ModelFormatException($"'{path}' is {length} bytes, over protobuf's 2 GB limit for one file (larger models keep their weights in external data files)");
            proto = ParseMapped(stream, (int)length, path);
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
        var model = new OnnxModel(proto, Path.GetDirectoryName(Path.GetFullPath(path)));
        try
        {
            model.CheckTensors(path);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Parses the file through a read-only mapping (no second copy of a large model), framing checked first.</summary>
    private static unsafe ModelProto ParseMapped(FileStream stream, int length, string source)
    {
        using var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        using var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        try
        {
            return Parse(new ReadOnlySpan<byte>(start + view.PointerOffset, length), source);
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    private static ModelProto Parse(ReadOnlySpan<byte> bytes, string source)
    {
        if (ProtobufFraming.Problem(bytes, ModelProto.Descriptor) is { } problem)
            throw new ModelFormatException($"'{source}' is not a readable ONNX model (corrupt protobuf: {problem})");
        return ModelParse.Parse(bytes);
    }

    public static OnnxModel FromBytes(ReadOnlySpan<byte> bytes, string? directory = null)
    {
        ModelProto proto;
        try { proto = Parse(bytes, "<bytes>"); }
        catch (InvalidProtocolBufferException e) { throw new ModelFormatException($"not a readable ONNX model: {FirstLine(e.Message)}", e); }
        Check(proto, "<bytes>");
        var model = new OnnxModel(proto, directory);
        model.CheckTensors("<bytes>");
        return model;
    }

    internal static OnnxModel FromProto(ModelProto proto, string? directory = null)
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
        foreach (var t in Proto.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External))
            new Tensor(t, _external).InlineExternal();
        Graph.Reindex();
    }

    /// <summary>The model as protobuf bytes (initializers listed as graph inputs brought up to date first, see <see cref="Graph.SyncInitializerInputs"/>).</summary>
    /// <exception cref="ModelFormatException">The model is over protobuf's 2 GB limit: write it with <see cref="ModelWriter"/> and external data.</exception>
    public byte[] ToBytes()
    {
        var proto = ProtoForWriting();
        long size = ModelWriter.SerializedSize(proto);
        if (size > MaxProtobufBytes)
            throw new ModelFormatException($"the model is {size} bytes inline, over protobuf's 2 GB limit for one buffer (ONNX Runtime sessions and validation take the model as one buffer)");
        return proto.ToByteArray();
    }

    /// <summary>
    /// A copy of the proto as it should be written (tensor bytes shared, not copied): external data inline, and
    /// graph inputs that name initializers matching them (IR 3 lists every initializer as an input).
    /// </summary>
    internal ModelProto ProtoForWriting()
    {
        Graph.SyncInitializerInputs(listEveryInitializer: Proto.IrVersion < 4);
        var copy = Proto.Clone();
        foreach (var t in copy.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External))
            new Tensor(t, _external).InlineExternal();
        return copy;
    }

    /// <summary>The model's bytes with <paramref name="values"/> (those that a node computes and are not outputs yet) appended as untyped graph outputs.</summary>
    /// <exception cref="ModelFormatException">The model is over protobuf's 2 GB limit.</exception>
    public byte[] ToBytesWithOutputs(IEnumerable<string> values)
    {
        var proto = WithOutputs(values);
        long size = ModelWriter.SerializedSize(proto);
        if (size > MaxProtobufBytes)
            throw new ModelFormatException($"the model is {size} bytes inline, over protobuf's 2 GB limit for one buffer (ONNX Runtime sessions take the model as one buffer)");
        return proto.ToByteArray();
    }

    /// <summary>
    /// The model for ONNX Runtime's shape inference alone (a session that is created, never run): <paramref name="values"/>
    /// appended as untyped outputs, the runtime inputs given the concrete dims of <paramref name="inputShapes"/>, no other
    /// declared shapes (value_info dropped, outputs left typed but unshaped, so that what ONNX Runtime reports is what it
    /// inferred), and large floating-point weights declared as inputs instead of carried (their dims are all inference reads).
    /// </summary>
    public byte[] ToBytesForShapeInference(IEnumerable<string> values, IReadOnlyDictionary<string, long[]> inputShapes)
    {
        var proto = WithOutputs(values);
        var graph = proto.Graph;
        graph.ValueInfo.Clear();
        foreach (var output in graph.Output)
            if (output.Type?.TensorType is { } typed) typed.Shape = null;
        var initialized = new HashSet<string>(graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        foreach (var input in graph.Input)
        {
            if (initialized.Contains(input.Name) || !inputShapes.TryGetValue(input.Name, out var dims) || input.Type?.TensorType is not { } tensor) continue;
            tensor.Shape = new TensorShapeProto();
            foreach (long d in dims) tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        }
        var declared = new HashSet<string>(graph.Input.Select(i => i.Name), StringComparer.Ordinal);
        for (int i = graph.Initializer.Count - 1; i >= 0; i--)
        {
            var t = graph.Initializer[i];
            if (DataType.IsFloating(t.DataType) && Tensor.CountOf(t) >= LargeWeightElements) DeclareInstead(graph, i, declared);
        }
        return proto.ToByteArray();
    }

    /// <summary>Float weights from this many elements on are declared, not carried, in <see cref="ToBytesForShapeInference"/>: shape arithmetic reads smaller tensors.</summary>
    private const long LargeWeightElements = 16384;

    /// <summary>A copy of the proto (weight bytes shared) with the given values appended as graph outputs.</summary>
    private ModelProto WithOutputs(IEnumerable<string> values)
    {
        var proto = Proto.Clone();
        var existing = new HashSet<string>(proto.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var produced = new HashSet<string>(proto.Graph.Node.SelectMany(n => n.Output), StringComparer.Ordinal);
        foreach (var v in values)
            if (produced.Contains(v) && existing.Add(v))
                proto.Graph.Output.Add(new ValueInfoProto { Name = v });
        return proto;
    }

    /// <summary>
    /// The model (with <paramref name="extraOutputs"/> as in <see cref="ToBytesWithOutputs"/>) split for a session that reads its
    /// large weights from this model's memory: stored float32 initializers of at least <paramref name="minBytes"/> raw bytes become
    /// float graph inputs, and come back with their bytes (shared, never copied: protobuf byte strings do not change).
    /// </summary>
    /// <param name="always">Stored float32 initializers split whatever their size (weights a caller will replace run by run).</param>
    public (byte[] Graph, IReadOnlyList<(string Name, long[] Dims, ReadOnlyMemory<byte> Bytes)> Weights) SplitWeights(IEnumerable<string> extraOutputs, int minBytes,
        IReadOnlySet<string>? always = null)
    {
        var proto = WithOutputs(extraOutputs);
        var graph = proto.Graph;
        var declared = new HashSet<string>(graph.Input.Select(i => i.Name), StringComparer.Ordinal);
        var weights = new List<(string, long[], ReadOnlyMemory<byte>)>();
        for (int i = graph.Initializer.Count - 1; i >= 0; i--)
        {
            var t = graph.Initializer[i];
            long elements = t.Dims.Aggregate(1L, (a, b) => a * b);
            if (t.DataType != DataType.Float || t.DataLocation == TensorProto.Types.DataLocation.External
                || (t.RawData.Length < minBytes && always?.Contains(t.Name) != true) || t.RawData.Length != elements * sizeof(float) || t.Dims.Any(d => d <= 0)) continue;
            weights.Add((t.Name, [.. t.Dims], t.RawData.Memory));
            DeclareInstead(graph, i, declared);
        }
        return (proto.ToByteArray(), weights);
    }

    /// <summary>
    /// Removes initializer <paramref name="index"/> from <paramref name="graph"/> and declares it as a graph input of its type
    /// and dims instead, to be fed (or, for inference, only described); an input already declared under its name (IR &lt; 4
    /// lists initializers as inputs) is given that type. <paramref name="declared"/> holds the input names and is kept up to date.
    /// </summary>
    private static void DeclareInstead(GraphProto graph, int index, HashSet<string> declared)
    {
        var t = graph.Initializer[index];
        graph.Initializer.RemoveAt(index);
        var value = GraphIO.Graph.TensorValue(t.Name, t.DataType, [.. t.Dims]);
        if (declared.Add(t.Name)) graph.Input.Add(value);
        else graph.Input.First(v => v.Name == t.Name).Type = value.Type;
    }

    /// <summary>
    /// The bytes of a model of <paramref name="nodes"/> (in graph order) and the initializers they read, sharing weight bytes with
    /// this one: the runtime inputs stay declared (every one, or with <paramref name="onlyReadInputs"/> those the nodes read:
    /// callers feed what is declared, and ORT rejects unknown feeds and missing ones),
    /// <paramref name="floatInputs"/> (per-sample shapes) are added as float inputs whose first dim is named <paramref name="batchDim"/>,
    /// and <paramref name="outputs"/> are its untyped outputs.
    /// </summary>
    /// <param name="float32Views">Values of another element type that cross the boundary as float32 (ONNX data type code
    /// of the value, and the name of its float32 view): a float input of that name is cast to the value's type before its
    /// readers, and an output is returned cast to float32 under that name.</param>
    public byte[] ExtractBytes(IReadOnlySet<Node> nodes, IEnumerable<(string Name, long[] SampleShape)> floatInputs, string batchDim,
        IEnumerable<string> outputs, string producerName, IReadOnlyDictionary<string, (string Float32Name, int ElementType)>? float32Views = null,
        bool onlyReadInputs = false) =>
        Extract(nodes, floatInputs, batchDim, outputs, producerName, float32Views, onlyReadInputs).ToByteArray();

    /// <summary>
    /// A model of <paramref name="nodes"/> (in graph order), every runtime input of this one, the initializers the nodes read
    /// (bytes shared, not copied) and <paramref name="outputs"/> as its untyped outputs: a part of this model to run on its own.
    /// </summary>
    public OnnxModel ExtractModel(IReadOnlySet<Node> nodes, IEnumerable<string> outputs, string producerName) =>
        new(Extract(nodes, [], "", outputs, producerName, null, onlyReadInputs: false), Directory);

    /// <summary>The runtime inputs a part of <paramref name="nodes"/> declares: every one, or only those the nodes read.</summary>
    public IEnumerable<string> InputsDeclared(IReadOnlySet<Node> nodes, bool onlyReadInputs)
    {
        var read = onlyReadInputs ? nodes.SelectMany(n => n.ReadNames()).ToHashSet(StringComparer.Ordinal) : null;
        return Graph.RuntimeInputs.Select(i => i.Name).Where(name => read is null || read.Contains(name));
    }

    /// <summary>
    /// As <see cref="ExtractModel(IReadOnlySet{Node}, IEnumerable{string}, string)"/>, but starting from known values:
    /// <paramref name="floatInputs"/> (per-sample shapes, first dim <paramref name="batchDim"/>) are fed instead of computed,
    /// and only the runtime inputs the nodes read stay declared.
    /// </summary>
    public OnnxModel ExtractModel(IReadOnlySet<Node> nodes, IEnumerable<(string Name, long[] SampleShape)> floatInputs, string batchDim,
        IEnumerable<string> outputs, string producerName) =>
        new(Extract(nodes, floatInputs, batchDim, outputs, producerName, null, onlyReadInputs: true), Directory);

    private ModelProto Extract(IReadOnlySet<Node> nodes, IEnumerable<(string Name, long[] SampleShape)> floatInputs, string batchDim,
        IEnumerable<string> outputs, string producerName, IReadOnlyDictionary<string, (string Float32Name, int ElementType)>? float32Views,
        bool onlyReadInputs)
    {
        var source = Proto.Graph;
        var sub = new GraphProto { Name = source.Name };
        var runtimeInputs = InputsDeclared(nodes, onlyReadInputs).ToHashSet(StringComparer.Ordinal);
        sub.Input.Add(source.Input.Where(i => runtimeInputs.Contains(i.Name)));
        foreach (var (name, sampleShape) in floatInputs)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batchDim });
            foreach (long d in sampleShape.Skip(1)) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            string declared = name;
            if (float32Views is not null && float32Views.TryGetValue(name, out var view))
            {
                declared = view.Float32Name;
                sub.Node.Add(Cast(declared, name, view.ElementType));
            }
            sub.Input.Add(new ValueInfoProto { Name = declared, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = DataType.Float, Shape = shape } } });
        }
        var read = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in Graph.Nodes)
        {
            if (!nodes.Contains(node)) continue;
            sub.Node.Add(node.Proto);
            foreach (var name in node.ReadNames()) read.Add(name);
        }
        foreach (var t in source.Initializer) if (read.Contains(t.Name)) sub.Initializer.Add(t);
        foreach (var t in source.SparseInitializer) if (read.Contains(t.Values?.Name ?? "")) sub.SparseInitializer.Add(t);
        foreach (var o in outputs)
        {
            if (float32Views is null || !float32Views.TryGetValue(o, out var view))
            {
                sub.Output.Add(new ValueInfoProto { Name = o });
                continue;
            }
            sub.Node.Add(Cast(o, view.Float32Name, DataType.Float));
            sub.Output.Add(new ValueInfoProto { Name = view.Float32Name });
        }
        var proto = new ModelProto { IrVersion = Proto.IrVersion, ProducerName = producerName, Graph = sub };
        proto.OpsetImport.Add(Proto.OpsetImport);
        proto.Functions.Add(Proto.Functions);
        return proto;
    }

    private static NodeProto Cast(string input, string output, int to)
    {
        var node = new NodeProto { OpType = "Cast", Name = output + "_cast", Input = { input }, Output = { output } };
        node.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = to });
        return node;
    }

    /// <summary>Writes via a temp file and rename, so a failure never leaves a partial model behind; with
    /// <paramref name="externalData"/> (or over 2 GB) the weights go to PATH.data beside it.</summary>
    public void Save(string path, bool externalData = false)
    {
        string full = Path.GetFullPath(path);
        var writer = ModelWriter.For(this, full, externalData);
        string dir = Path.GetDirectoryName(full)!;
        if (writer.DataFileName is { } data) WriteAtomically(Path.Combine(dir, data), writer.WriteData);
        WriteAtomically(full, writer.WriteModel);
    }

    private static void WriteAtomically(string path, Action<Stream> write)
    {
        string tmp = Path.Combine(Path.GetDirectoryName(path)!, $".onnxslim-{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write)) write(stream);
            File.Move(tmp, path, overwrite: true);
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
        // ONNX Runtime's C# API reads input dims as 32-bit ints: 2^40 would read as 0, 2^32 + 5 as 5.
        foreach (var input in proto.Graph.Input)
        {
            var dims = input.Type?.TensorType?.Shape?.Dim;
            for (int i = 0; dims is not null && i < dims.Count; i++)
                if (dims[i].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && dims[i].DimValue > int.MaxValue)
                    throw new ModelFormatException($"'{source}': graph input '{input.Name}' declares dim {i} = {dims[i].DimValue}, more than any tensor can hold");
        }
    }

    /// <summary>Every initializer's and Constant node's stored data fits its dims and type (<see cref="Tensor.CheckStorage"/>).</summary>
    private void CheckTensors(string source)
    {
        try
        {
            foreach (var t in Proto.Graph.Initializer) new Tensor(t, _external).CheckStorage();
            foreach (var n in Graph.Nodes)
                if (n.OpType == "Constant" && n.Attribute("value")?.T is { } value) new Tensor(value, _external).CheckStorage();
        }
        catch (ModelFormatException e)
        {
            throw new ModelFormatException($"'{source}': {e.Message}", e);
        }
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    public void Dispose() => _external?.Dispose();
}
