using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxSlim.Runtime;

/// <summary>A float32 value in caller memory, <paramref name="Data"/> holding exactly <paramref name="Shape"/>'s elements.</summary>
public readonly record struct FloatBuffer(string Name, Memory<float> Data, long[] Shape);

/// <summary>An ONNX Runtime session with named-tensor inputs and outputs.</summary>
public sealed class ModelRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly string[] _outputNames;
    private readonly SharedWeights? _weights;
    private readonly IReadOnlyDictionary<string, NodeMetadata> _inputs;

    /// <param name="optimize">Full graph optimisation (for timing and repeated runs); false for one-off probes.</param>
    /// <param name="spinning">Idle ORT threads spin (for timing); false for work that shares the cores (see <see cref="SessionFactory.Create(byte[], Provider, int, bool, bool, string?, bool)"/>).</param>
    /// <param name="prepack">Whether ONNX Runtime prepacks the weights (see <see cref="SessionFactory.Create(byte[], Provider, int, bool, bool, string?, bool)"/>).</param>
    public ModelRunner(byte[] model, Provider provider = Provider.Cpu, int intraOpThreads = 0, bool optimize = true, bool spinning = true,
        bool prepack = true)
    {
        _session = SessionFactory.Create(model, provider, intraOpThreads, optimize, spinning, prepack: prepack);
        _outputNames = [.. _session.OutputMetadata.Keys];
        _inputs = _session.InputMetadata;
    }

    /// <summary>
    /// A one-off session (basic optimisation) of an in-memory model that reads its large weights from the model's own
    /// memory instead of a copy (<see cref="SharedWeights"/>); <paramref name="extraOutputs"/> are added as outputs
    /// (those that exist and are not outputs yet). <see cref="Inputs"/> lists the model's own inputs only.
    /// </summary>
    /// <param name="replaceable">Stored float32 weights that <see cref="Run(IReadOnlyList{NamedTensor}, IReadOnlyDictionary{string, float[]})"/>
    /// may replace (they are fed as inputs whatever their size).</param>
    /// <param name="optimize">Full graph optimisation, for a session that runs many times (the default, basic, suits one-off runs).</param>
    /// <param name="intraOpThreads">ONNX Runtime's threads per run (0: its default); 1 for a caller that runs several at once.</param>
    public ModelRunner(GraphIO.OnnxModel model, Provider provider = Provider.Cpu, IEnumerable<string>? extraOutputs = null, IReadOnlySet<string>? replaceable = null,
        bool optimize = false, int intraOpThreads = 0)
    {
        _weights = SharedWeights.Split(model, extraOutputs ?? [], replaceable);
        try
        {
            _session = SessionFactory.Create(_weights.Graph, provider, intraOpThreads, optimize, spinning: false);
        }
        catch
        {
            _weights.Dispose();
            throw;
        }
        _outputNames = [.. _session.OutputMetadata.Keys];
        var shared = _weights.Names.ToHashSet(StringComparer.Ordinal);
        _inputs = _session.InputMetadata.Where(kv => !shared.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// A one-off session (as <see cref="ModelRunner(GraphIO.OnnxModel, Provider, IEnumerable{string}?, IReadOnlySet{string}?, bool, int)"/>) of only
    /// the nodes that compute <paramref name="values"/>, which are its outputs (<paramref name="extraOutputs"/> of those nodes besides);
    /// it still declares every input of the model.
    /// </summary>
    public static ModelRunner ForValues(GraphIO.OnnxModel model, IReadOnlyCollection<string> values, Provider provider = Provider.Cpu, IEnumerable<string>? extraOutputs = null,
        int intraOpThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (values.Count == 0) throw new ArgumentException("a part of a model needs at least one value to compute", nameof(values));
        foreach (var v in values)
            if (model.Graph.Producer(v) is null) throw new ArgumentException($"value '{v}' is not computed by any node", nameof(values));
        using var part = model.ExtractModel(model.Graph.NodesComputing(values), values, "onnxslim-part");
        return new ModelRunner(part, provider, extraOutputs, intraOpThreads: intraOpThreads);
    }

    public IReadOnlyDictionary<string, NodeMetadata> Inputs => _inputs;
    public IReadOnlyList<string> OutputNames => _outputNames;

    /// <param name="outputs">Which outputs to return (null: all).</param>
    public IReadOnlyList<NamedTensor> Run(IReadOnlyList<NamedTensor> inputs, IReadOnlyList<string>? outputs = null) => Run(inputs, outputs, null);

    /// <summary>
    /// Runs with some of the model's weights replaced for this run only (row-major float32, the weight's shape): the
    /// runner must have been made from an <see cref="GraphIO.OnnxModel"/> with them among its replaceable weights.
    /// </summary>
    /// <param name="reuse">Outputs of an earlier run that the caller no longer reads: an output of the same type and size is
    /// copied into its array rather than a new one, so that repeated runs touch no fresh memory.</param>
    public IReadOnlyList<NamedTensor> Run(IReadOnlyList<NamedTensor> inputs, IReadOnlyDictionary<string, float[]> weights, IReadOnlyList<NamedTensor>? reuse = null) =>
        Run(inputs, null, weights, reuse);

    private IReadOnlyList<NamedTensor> Run(IReadOnlyList<NamedTensor> inputs, IReadOnlyList<string>? outputs, IReadOnlyDictionary<string, float[]>? replaced,
        IReadOnlyList<NamedTensor>? reuse = null)
    {
        var values = new List<OrtValue>(inputs.Count);
        var outputNames = outputs?.ToArray() ?? _outputNames;
        try
        {
            foreach (var input in inputs) values.Add(ToOrtValue(input));
            var shared = new List<OrtValue>(_weights?.Values ?? []);
            if (replaced is not null)
            {
                foreach (var (name, data) in replaced)
                {
                    int at = _weights?.IndexOf(name) ?? -1;
                    if (at < 0) throw new ArgumentException($"weight '{name}' is not one this runner feeds (replaceable weights must be named when it is made)", nameof(replaced));
                    var dims = shared[at].GetTensorTypeAndShape().Shape;
                    if (dims.Aggregate(1L, (a, b) => a * b) != data.Length)
                        throw new ArgumentException($"weight '{name}' has {dims.Aggregate(1L, (a, b) => a * b)} values, {data.Length} were given", nameof(replaced));
                    var value = OrtValue.CreateTensorValueFromMemory(data, dims);
                    values.Add(value);
                    shared[at] = value;
                }
            }
            string[] feedNames = [.. inputs.Select(i => i.Name), .. _weights?.Names ?? []];
            using var results = _session.Run(_runOptions, feedNames, [.. values.Take(inputs.Count), .. shared], outputNames);
            var returned = new List<NamedTensor>(results.Count);
            for (int i = 0; i < results.Count; i++) returned.Add(FromOrtValue(outputNames[i], results[i], reuse?.FirstOrDefault(t => t.Name == outputNames[i])));
            return returned;
        }
        catch (OnnxRuntimeException e)
        {
            throw new RuntimeUnavailableException($"ONNX Runtime failed to run the model: {SessionFactory.FirstLine(e.Message)}", e);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>
    /// Runs the samples (first axis of every input) <paramref name="batch"/> at a time and stacks the outputs, so
    /// ONNX Runtime's intermediates stay a batch's worth; one run when the model fixes its batch size differently or
    /// an output is not batch-major.
    /// </summary>
    /// <param name="outputs">Which outputs to return (null: all).</param>
    public IReadOnlyList<NamedTensor> RunInBatches(IReadOnlyList<NamedTensor> inputs, int batch, IReadOnlyList<string>? outputs = null)
    {
        if (RunsWhole(Inputs, inputs, batch)) return Run(inputs, outputs);
        long n = inputs[0].Shape[0];
        NamedTensor[]? stacked = null;
        bool batchMajor = true;
        ForEachBatch(inputs, batch, outputs, (first, count, part) =>
        {
            if (stacked is null)
            {
                if (part.Any(p => p.Shape.Length == 0 || p.Shape[0] != count)) return batchMajor = false;
                stacked = [.. part.Select(p => p with { Shape = [n, .. p.Shape[1..]], Data = Array.CreateInstance(p.Data.GetType().GetElementType()!, p.Data.Length / count * n) })];
            }
            for (int i = 0; i < part.Count && batchMajor; i++)
            {
                var (p, whole) = (part[i], stacked[i]);
                batchMajor = p.Shape.Length > 0 && p.Shape[0] == count && p.Data.GetType() == whole.Data.GetType() && p.Shape.AsSpan(1).SequenceEqual(whole.Shape.AsSpan(1));
                if (batchMajor) Array.Copy(p.Data, 0, whole.Data, first * (p.Data.Length / count), p.Data.Length);
            }
            return batchMajor;
        });
        return batchMajor ? stacked! : Run(inputs, outputs);
    }

    /// <summary>
    /// Runs the samples <paramref name="batch"/> at a time (a batch size the model fixes wins) and hands each batch's
    /// outputs to <paramref name="each"/>, in order, with its first sample and its count; <paramref name="each"/> returns
    /// whether to go on. The outputs' arrays are reused from one batch to a later one: what is kept must be copied.
    /// </summary>
    /// <param name="outputs">Which outputs to return (null: all).</param>
    /// <param name="workers">Batches run at once, each on its own thread (for a session of one ONNX Runtime thread).</param>
    public void ForEachBatch(IReadOnlyList<NamedTensor> inputs, int batch, IReadOnlyList<string>? outputs, Func<long, long, IReadOnlyList<NamedTensor>, bool> each,
        int workers = 1)
    {
        if (batch < 1) throw new ArgumentException($"batch must be at least 1, got {batch}", nameof(batch));
        if (workers < 1) throw new ArgumentException($"workers must be at least 1, got {workers}", nameof(workers));
        long n = inputs[0].Shape[0];
        if (FixedBatch(Inputs) is int fixedBatch) batch = fixedBatch;
        long batches = (n + batch - 1) / batch;
        var parts = new IReadOnlyList<NamedTensor>?[Math.Min(workers, batches)];
        IReadOnlyList<NamedTensor> RunBatch(long b, IReadOnlyList<NamedTensor>? reuse) =>
            Run([.. inputs.Select(t => t.Rows(b * batch, Math.Min(batch, n - b * batch)))], outputs, null, reuse);
        for (long b0 = 0; b0 < batches; b0 += parts.Length)
        {
            int here = (int)Math.Min(parts.Length, batches - b0);
            if (here == 1) parts[0] = RunBatch(b0, parts[0]);
            else
            {
                try { Parallel.For(0, here, new ParallelOptions { MaxDegreeOfParallelism = here }, k => parts[k] = RunBatch(b0 + k, parts[k])); }
                catch (AggregateException e) when (e.InnerExceptions.Count == 1)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
                }
            }
            for (int k = 0; k < here; k++)
            {
                long first = (b0 + k) * batch;
                if (!each(first, Math.Min(batch, n - first), parts[k]!)) return;
            }
        }
    }

    /// <summary>Whether <see cref="RunInBatches"/> runs these inputs in one run (a model with these <paramref name="modelInputs"/>).</summary>
    public static bool RunsWhole(IReadOnlyDictionary<string, NodeMetadata> modelInputs, IReadOnlyList<NamedTensor> inputs, int batch)
    {
        long n = inputs.Count > 0 && inputs[0].Shape.Length > 0 ? inputs[0].Shape[0] : 0;
        int? fixedBatch = FixedBatch(modelInputs);
        if (fixedBatch is int f) batch = f;
        return n <= batch || n % (fixedBatch ?? 1) != 0 || inputs.Any(t => t.Shape.Length == 0 || t.Shape[0] != n);
    }

    /// <summary>The batch size the model's first input fixes, if it does.</summary>
    private static int? FixedBatch(IReadOnlyDictionary<string, NodeMetadata> modelInputs) =>
        modelInputs.Count > 0 && modelInputs.Values.First().Dimensions is [var d, ..] && d > 0 ? d : null;

    /// <summary>
    /// Runs with float32 values in caller memory: <paramref name="floatInputs"/> are read where they lie, and every
    /// output (all of <see cref="OutputNames"/>, any order) is written by ONNX Runtime straight into its buffer, so a
    /// run allocates and copies nothing on the managed side. Each buffer's shape must be the value's exact shape.
    /// </summary>
    public void RunInto(IReadOnlyList<NamedTensor> inputs, IReadOnlyList<FloatBuffer> floatInputs, IReadOnlyList<FloatBuffer> outputs)
    {
        if (outputs.Count != _outputNames.Length)
            throw new ArgumentException($"the model has {_outputNames.Length} outputs, {outputs.Count} buffers were given");
        var values = new List<OrtValue>(inputs.Count + floatInputs.Count + outputs.Count);
        try
        {
            foreach (var input in inputs) values.Add(ToOrtValue(input));
            foreach (var input in floatInputs) values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.Data, input.Shape));
            int firstOutput = values.Count;
            foreach (var output in outputs) values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, output.Data, output.Shape));
            string[] inputNames = [.. inputs.Select(i => i.Name), .. floatInputs.Select(i => i.Name)];
            _session.Run(_runOptions, inputNames, values.Take(firstOutput).ToList(), outputs.Select(o => o.Name).ToList(), values.Skip(firstOutput).ToList());
        }
        catch (OnnxRuntimeException e)
        {
            throw new RuntimeUnavailableException($"ONNX Runtime failed to run the model: {SessionFactory.FirstLine(e.Message)}", e);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>Shapes of every output for these inputs, read without copying the data out.</summary>
    /// <param name="types">Filled with each output's element type, when given (what a value really is, whatever the graph declares).</param>
    public Dictionary<string, long[]> OutputShapes(IReadOnlyList<NamedTensor> inputs, IDictionary<string, TensorElementType>? types = null)
    {
        RunWithShapes(inputs, [], out var shapes, types);
        return shapes;
    }

    /// <summary>
    /// One run that copies out only the outputs named in <paramref name="copied"/> (in that order) and reads the shape
    /// of every output: a probe's shapes and a model's own outputs without a second run.
    /// </summary>
    /// <param name="types">Filled with each output's element type, when given.</param>
    public IReadOnlyList<NamedTensor> RunWithShapes(IReadOnlyList<NamedTensor> inputs, IReadOnlyList<string> copied, out Dictionary<string, long[]> shapes,
        IDictionary<string, TensorElementType>? types = null)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _outputNames.Length; i++) index[_outputNames[i]] = i;
        foreach (var name in copied)
            if (!index.ContainsKey(name)) throw new ArgumentException($"'{name}' is not an output of this session", nameof(copied));
        var values = new List<OrtValue>(inputs.Count);
        try
        {
            foreach (var input in inputs) values.Add(ToOrtValue(input));
            string[] names = [.. inputs.Select(i => i.Name), .. _weights?.Names ?? []];
            using var results = _session.Run(_runOptions, names, [.. values, .. _weights?.Values ?? []], _outputNames);
            shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
            for (int i = 0; i < results.Count; i++)
                if (results[i].OnnxType == OnnxValueType.ONNX_TYPE_TENSOR)
                {
                    var info = results[i].GetTensorTypeAndShape();
                    shapes[_outputNames[i]] = info.Shape;
                    if (types is not null) types[_outputNames[i]] = info.ElementDataType;
                }
            return [.. copied.Select(name => FromOrtValue(name, results[index[name]]))];
        }
        catch (OnnxRuntimeException e)
        {
            throw new RuntimeUnavailableException($"ONNX Runtime failed to run the model: {SessionFactory.FirstLine(e.Message)}", e);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>Runs and throws the outputs away: the timed path, with inputs already on the native side.</summary>
    public void RunPrepared(string[] inputNames, IReadOnlyCollection<OrtValue> inputs)
    {
        if (_weights is not null) throw new InvalidOperationException("a runner over shared weights is for one-off runs, not timing");
        try
        {
            using var results = _session.Run(_runOptions, inputNames, inputs, _outputNames);
        }
        catch (OnnxRuntimeException e)
        {
            throw new RuntimeUnavailableException($"ONNX Runtime failed to run the model: {SessionFactory.FirstLine(e.Message)}", e);
        }
    }

    public static OrtValue ToOrtValue(NamedTensor t) => t.Data switch
    {
        float[] f => OrtValue.CreateTensorValueFromMemory(f, t.Shape),
        // System.Half and ORT's Float16 are the same 16 bits.
        Half[] h => OrtValue.CreateTensorValueFromMemory(MemoryMarshal.Cast<Half, Float16>(h).ToArray(), t.Shape),
        BFloat16[] b => OrtValue.CreateTensorValueFromMemory(b, t.Shape),
        long[] l => OrtValue.CreateTensorValueFromMemory(l, t.Shape),
        int[] i => OrtValue.CreateTensorValueFromMemory(i, t.Shape),
        byte[] b => OrtValue.CreateTensorValueFromMemory(b, t.Shape),
        bool[] b => OrtValue.CreateTensorValueFromMemory(b, t.Shape),
        double[] d => OrtValue.CreateTensorValueFromMemory(d, t.Shape),
        _ => throw new ArgumentException($"input '{t.Name}' has unsupported data {t.Data.GetType().Name}"),
    };

    /// <param name="reuse">A tensor whose array may be overwritten: used when it has the same element type and size.</param>
    private static NamedTensor FromOrtValue(string name, OrtValue value, NamedTensor? reuse = null)
    {
        if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
            return new NamedTensor(name, TensorElementType.DataTypeMax, [0], Array.Empty<float>());
        var info = value.GetTensorTypeAndShape();
        long[] shape = info.Shape;
        var into = reuse?.ElementType == info.ElementDataType ? reuse.Data : null;
        Array data = info.ElementDataType switch
        {
            TensorElementType.Float => Copy(value.GetTensorDataAsSpan<float>(), into),
            TensorElementType.Int64 => Copy(value.GetTensorDataAsSpan<long>(), into),
            TensorElementType.Int32 => Copy(value.GetTensorDataAsSpan<int>(), into),
            TensorElementType.UInt8 => Copy(value.GetTensorDataAsSpan<byte>(), into),
            TensorElementType.Bool => Copy(value.GetTensorDataAsSpan<bool>(), into),
            TensorElementType.Float16 => Copy(MemoryMarshal.Cast<Float16, Half>(value.GetTensorDataAsSpan<Float16>()), into),
            TensorElementType.BFloat16 => Copy(value.GetTensorDataAsSpan<BFloat16>(), into),
            TensorElementType.Double => Copy(value.GetTensorDataAsSpan<double>(), into),
            _ => Array.Empty<float>(),
        };
        return new NamedTensor(name, info.ElementDataType, shape, data);
    }

    private static T[] Copy<T>(ReadOnlySpan<T> values, Array? into)
    {
        if (into is not T[] array || array.Length != values.Length) return values.ToArray();
        values.CopyTo(array);
        return array;
    }

    public void Dispose()
    {
        _runOptions.Dispose();
        _session.Dispose();
        _weights?.Dispose();
    }
}
