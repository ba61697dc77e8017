using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Calibration;

/// <summary>
/// Second moments E[x·xᵀ] of what layers read, measured on the original model with calibration data.
/// A plain request observes the channel vector (axis 1) at every spatial position of every sample; a
/// request for a Conv observes its im2col patches (features channel-major, then kernel taps, the weight's
/// order), so the correlation between neighbouring taps is kept. Observations are sampled (seeded) so
/// the cost stays bounded on large maps and wide layers.
/// </summary>
public static class ChannelMoments
{
    private const int ChunkRows = 1024;

    /// <summary>Rows a request gathers before their products go into its Gram: one float32 flush (see Accumulator.Gather).</summary>
    private const int PendingRows = BlockedProducts.Flush;

    /// <summary>Multiply-adds one moment matrix may cost (features²·observations): wide inputs get fewer observations.</summary>
    private const long WorkPerRequest = 1L << 31;

    private const int MinObservations = 4096;

    /// <summary>Most batches run at once in a pass (each on one ONNX Runtime thread).</summary>
    private const int MaxProducers = 4;

    /// <summary>Bytes the batches run beside the first may hold in all (see <see cref="Compute(OnnxModel, IReadOnlyCollection{Request}, CalibrationData, int, int, long, Provider, TargetRecording?, bool)"/>).</summary>
    private const long SideBySideBytes = 128L << 20;

    /// <summary>
    /// One matrix to measure: the channels of <paramref name="Value"/>, or the patches that <paramref name="Conv"/>
    /// (weight dims <paramref name="WeightDims"/>, one group) reads from it. With <paramref name="SigmoidLogits"/>
    /// (a value whose spatial size is a whole multiple of <paramref name="Value"/>'s), each observation is weighted
    /// by the sigmoid's slope σ'(z) = σ(z)(1 − σ(z)) averaged over the block of logits z its position maps to: the
    /// moments E[s·x·xᵀ] of a layer whose output is squashed, where an error changes the output only near the
    /// sigmoid's middle, not where it is saturated.
    /// </summary>
    public sealed record Request(string Value, Node? Conv = null, long[]? WeightDims = null, string? SigmoidLogits = null);

    /// <returns>Per request, its F×F moment matrix (row-major, symmetric), divided by the number of observations.</returns>
    /// <param name="recording">Also records, in the same pass, the values the reconstruction will want (see <see cref="TargetRecording"/>).</param>
    public static IReadOnlyDictionary<Request, double[]> Compute(OnnxModel model, IReadOnlyCollection<Request> requests,
        IReadOnlyList<NamedTensor> calibrationInputs, int maxObservations = 32768, int seed = 0, long batchBytes = 8L << 20,
        Provider provider = Provider.Cpu, TargetRecording? recording = null) =>
        Compute(model, requests, CalibrationData.FromTensors(calibrationInputs), maxObservations, seed, batchBytes, provider, recording);

    /// <inheritdoc cref="Compute(OnnxModel, IReadOnlyCollection{Request}, IReadOnlyList{NamedTensor}, int, int, long, Provider, TargetRecording?)"/>
    public static IReadOnlyDictionary<Request, double[]> Compute(OnnxModel model, IReadOnlyCollection<Request> requests,
        CalibrationData calibration, int maxObservations = 32768, int seed = 0, long batchBytes = 8L << 20,
        Provider provider = Provider.Cpu, TargetRecording? recording = null) =>
        Compute(model, requests, calibration, maxObservations, seed, batchBytes, provider, recording, alongside: true);

    /// <param name="alongside">Whether each batch is consumed on another thread while the next one runs (else in turn on
    /// this one): the same results either way, which tests compare.</param>
    internal static IReadOnlyDictionary<Request, double[]> Compute(OnnxModel model, IReadOnlyCollection<Request> requests,
        CalibrationData calibration, int maxObservations, int seed, long batchBytes, Provider provider, TargetRecording? recording, bool alongside)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(requests);
        if (maxObservations < 1) throw new ArgumentException($"maxObservations must be at least 1, got {maxObservations}", nameof(maxObservations));
        var result = new Dictionary<Request, double[]>();
        if (requests.Count == 0) return result;
        var names = requests.Select(r => r.Value).Concat(requests.Select(r => r.SigmoidLogits).OfType<string>()).Distinct().ToArray();
        var shapes = ValueShapes.Probe(model, calibration, provider, out var types);
        foreach (var n in names)
            if (!shapes.ContainsKey(n)) throw new ArgumentException($"value '{n}' is not a tensor the model computes");
        var sums = requests.Distinct().ToDictionary(r => r, r => Accumulator.For(r, shapes[r.Value], calibration.Images, maxObservations, seed,
            r.SigmoidLogits is { } z ? shapes[z] : null));
        // One chunk buffer for all requests (they take turns): one each cost ResNet-50 ~0.5 GB.
        var chunk = new float[(long)sums.Values.Max(a => a.Features) * ChunkRows];

        // The values and the model inputs lie in one buffer where ONNX Runtime writes its outputs; a batch is what the
        // budget allows for those plus the intermediates ONNX Runtime keeps alive meanwhile.
        var inputs = calibration.Inputs.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var floatInputs = calibration.Inputs.Where(t => t.ElementType == TensorElementType.Float).Select(t => t.Name).ToList();
        var otherInputs = calibration.Inputs.Where(t => t.ElementType != TensorElementType.Float).Select(t => t.Name).ToList();
        // Inputs of another floating type (float16, …) are fed as they are, and held widened where they are read.
        var widened = calibration.Inputs.Where(t => t.ElementType != TensorElementType.Float && CalibrationData.Widens(t)).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        if (recording is not null && recording.Images != calibration.Images)
            throw new ArgumentException($"the recording is for {recording.Images} samples, the calibration set has {calibration.Images}");
        if (recording is not null) recording.OriginalProbe = (shapes, types);
        var recorded = recording?.Plan(shapes.Where(s => !otherInputs.Contains(s.Key) || widened.Contains(s.Key)).ToDictionary(StringComparer.Ordinal)) ?? [];
        var computed = names.Concat(recorded).Distinct().Where(n => !inputs.Contains(n)).ToList();
        var readInputs = names.Concat(recorded).Distinct().Where(widened.Contains).ToList();
        var held = floatInputs.Concat(readInputs).Concat(computed).ToList();
        SubModel.Result? sub = computed.Count > 0 ? SubModel.Build(model, computed, types: types) : null;
        long perSample = held.Concat(otherInputs).Sum(v => ValueShapes.Bytes(shapes, v))
            + (sub is null ? 0 : ValueShapes.IntermediateBytes(sub.Nodes, held.ToHashSet(StringComparer.Ordinal), shapes));
        int batch = (int)Math.Clamp(batchBytes / Math.Max(perSample, 1), 1, calibration.Images);
        // A model that fixes its batch (exports often fix it at 1) runs that many samples at a time; the calibration data
        // was checked to hold a multiple of it.
        if (sub is not null && model.Graph.RuntimeInputs.FirstOrDefault()?.Dims is [> 0 and var fixedBatch, ..]) batch = (int)fixedBatch;
        // Alongside on the CPU, batches run side by side on one ONNX Runtime thread each (OrderedPipeline): a second thread
        // inside one run only added hand-overs between a batch's small kernels (PP-OCRv4 rec's pass: 9.2–10.2 → 8.3–8.4
        // CPU s on one thread, same values), and two runs at once keep both cores busy where one left the sums' core idle.
        // Each run beside the first holds a batch more (its values and ONNX Runtime's intermediates): as many as
        // SideBySideBytes allows (rec: 44 MiB a sample and ResNet-50: 80, two at once; det's 206 runs one at a time on
        // ORT's own threads: its plan peak rose by 200 MiB). ResNet-50 on 256 images, quiet pairs: the pass 16.9–17.5 →
        // 15.9–16.0 s (30.6–31.5 → 28.7–29.1 CPU s), same values; its kernels split well over two threads, but each
        // split waits for the slower half.
        int producers = 0;
        if (alongside && provider == Provider.Cpu)
            for (int p = 2; p <= Math.Min(Environment.ProcessorCount, MaxProducers) && (p - 1) * perSample * batch <= SideBySideBytes; p++) producers = p;
        using var runner = sub is null ? null : new ModelRunner(sub.Bytes, provider, intraOpThreads: producers > 0 ? 1 : 0, spinning: false,
            prepack: WeightPrepacking.Worthwhile(model.Graph, sub.Nodes));
        var offsets = new Dictionary<string, (int Offset, int PerSample)>(StringComparer.Ordinal);
        long total = 0;
        foreach (var v in held)
        {
            int per = checked((int)ValueShapes.Elements(shapes[v]));
            offsets[v] = (checked((int)total), per);
            total += (long)per * batch;
        }
        // Batches are produced (read, run, checked) into arenas and consumed (sums, recording) one at a time and in order,
        // so every sum and every recorded row is what it was: alongside, while others are produced (two arenas for one
        // producer, more for several), else in turn on this thread.
        int batches = (calibration.Images + batch - 1) / batch;
        int cycle = OrderedPipeline.Arenas(producers, total * sizeof(float));
        var arenas = new float[Math.Min(batches, cycle)][];
        for (int a = 0; a < arenas.Length; a++) arenas[a] = new float[total];
        Memory<float> Slot(int k, string v, int count) => arenas[k].AsMemory(offsets[v].Offset, offsets[v].PerSample * count);
        FloatBuffer Buffer(int k, string v, int count) => new(sub?.Float32Name(v) ?? v, Slot(k, v, count), [count, .. shapes[v][1..]]);
        int Count(int b) => Math.Min(batch, calibration.Images - b * batch);
        void Produce(int b, int k)
        {
            int start = b * batch, count = Count(b);
            foreach (var name in floatInputs.Concat(readInputs)) calibration.CopyFloats(name, start, count, Slot(k, name, count).Span);
            runner?.RunInto(calibration.Slice(start, count, otherInputs), [.. floatInputs.Select(v => Buffer(k, v, count))], [.. computed.Select(v => Buffer(k, v, count))]);
            foreach (var v in computed)
            {
                var type = types.GetValueOrDefault(v, TensorElementType.Float);
                SubModel.RoundToOwnType(Slot(k, v, count).Span, type);
                FiniteValues.Check("original", v, Slot(k, v, count).Span, start, offsets[v].PerSample, type);
            }
        }
        void Consume(int b, int k)
        {
            int first = b * batch, count = Count(b);
            foreach (var (request, sum) in sums)
                sum.Add(Slot(k, request.Value, count).Span, first, count, chunk, request.SigmoidLogits is { } z ? Slot(k, z, count).Span : default);
            recording?.Record(first, count, v => Slot(k, v, count));
        }

        OrderedPipeline.Run(batches, producers, cycle, alongside, Produce, Consume);
        foreach (var (request, sum) in sums)
        {
            var gram = result[request] = sum.Moments();
            // Finite values past ~1e19 overflow the float32 products the Gram is summed from; the ranking's fits would then
            // fail as if the code were wrong. Such samples are off the model's scale, which the user can fix. The diagonal
            // suffices: |xᵢxⱼ| ≤ max(xᵢ², xⱼ²), so an overflowing product overflows a square of the same observation.
            int n = sum.Features;
            for (int i = 0; i < n; i++)
                if (!double.IsFinite(gram[(long)i * n + i]))
                    throw new ArgumentException($"the moments of '{request.Value}' overflow on the calibration samples: are the samples scaled as the model expects?");
        }
        return result;
    }

    /// <summary>Running XᵀX of the sampled observations of one request; rows are gathered feature-major in chunks.</summary>
    private sealed class Accumulator
    {
        private readonly ActivationLayout _layout;
        private readonly ConvGeometry? _conv;
        private readonly int _features;
        private readonly long _rowsPerImage;
        private readonly long[] _rows;
        private readonly double[] _gram;
        private readonly long[] _chunkRows = new long[ChunkRows];
        private readonly long[]? _logitsShape; // [N, C, H', W'] when observations are weighted by a sigmoid's slope
        private readonly long[] _shape;
        private int _next; // first row (index into _rows) not consumed yet
        private float[]? _pending; // rows waiting for their products, feature-major with stride PendingRows (see Gather)
        private int _pendingCount;

        private Accumulator(ActivationLayout layout, ConvGeometry? conv, int features, long rowsPerImage, long[] rows, long[] shape, long[]? logitsShape)
        {
            _shape = shape;
            _logitsShape = logitsShape;
            _layout = layout;
            _conv = conv;
            _features = features;
            _rowsPerImage = rowsPerImage;
            _rows = rows;
            _gram = LargeArrays.Zeroed<double>((long)features * features);
        }

        public static Accumulator For(Request request, long[] shape, int images, int maxObservations, int seed, long[]? logitsShape = null)
        {
            if (logitsShape is not null && (request.Conv is not null || logitsShape.Length != shape.Length
                || Enumerable.Range(2, shape.Length - 2).Any(d => shape[d] == 0 || logitsShape[d] % shape[d] != 0)))
                throw new ArgumentException($"sigmoid weights need channel moments of a map whose size divides the logits': {NamedTensor.FormatShape(shape)} and {NamedTensor.FormatShape(logitsShape ?? [])}");
            if (shape.Length < 2) throw new ArgumentException($"value '{request.Value}' has shape {NamedTensor.FormatShape(shape)}; moments need [N, C, …]");
            int channels = checked((int)shape[1]);
            int area = checked((int)shape.Skip(2).Aggregate(1L, (a, b) => a * b));
            var layout = new ActivationLayout(channels, area, ChannelMajor: true);
            ConvGeometry? conv = null;
            int features = channels;
            long rowsPerImage = area;
            if (request.Conv is { } node)
            {
                var dims = request.WeightDims ?? throw new ArgumentException($"a patch request for {node} needs its weight dims");
                if (node.GetInt("group", 1) != 1 || dims.Length < 3 || dims[1] != channels)
                    throw new ArgumentException($"patch moments need a one-group conv reading all {channels} channels; {node} has weight {NamedTensor.FormatShape(dims)}");
                ConvGeometry g;
                try { g = ConvGeometry.Resolve(node, dims, shape); }
                catch (LayerSkippedException e) { throw new ArgumentException($"{node}: {e.Message}"); }
                conv = g;
                features = checked(channels * g.KernelArea);
                rowsPerImage = g.OutArea;
            }
            int observations = (int)Math.Clamp(WorkPerRequest / ((long)features * features), Math.Min(MinObservations, maxObservations), maxObservations);
            var rows = PositionSampler.Sample(rowsPerImage * images, observations, PositionSampler.LayerSeed(seed, request.Value + "|" + request.Conv?.Id));
            return new Accumulator(layout, conv, features, rowsPerImage, rows, shape, logitsShape);
        }

        public int Features => _features;

        /// <summary>Adds the sampled rows in a batch of images; <paramref name="chunk"/> holds at least <see cref="Features"/> × <see cref="ChunkRows"/> values.</summary>
        /// <param name="logits">The images' logits, when observations are weighted (see <see cref="Request.SigmoidLogits"/>).</param>
        public void Add(ReadOnlySpan<float> data, int firstImage, int images, float[] chunk, ReadOnlySpan<float> logits = default)
        {
            long offset = firstImage * _rowsPerImage, end = (firstImage + images) * _rowsPerImage;
            while (_next < _rows.Length && _rows[_next] < end)
            {
                int take = 0;
                while (take < ChunkRows && _next < _rows.Length && _rows[_next] < end) _chunkRows[take++] = _rows[_next++] - offset;
                var local = _chunkRows.AsSpan(0, take);
                if (_conv is { } g) RowReader.ConvPatches(data, _layout, g, 0, _layout.Channels, local, chunk, ChunkRows);
                else RowReader.Channels(data, _layout, 0, _layout.Channels, local, chunk, ChunkRows);
                if (_logitsShape is not null)
                    for (int r = 0; r < take; r++)
                    {
                        double w = Math.Sqrt(SigmoidSlope(logits, local[r]));
                        for (int f = 0; f < _features; f++) chunk[(long)f * ChunkRows + r] = (float)(chunk[(long)f * ChunkRows + r] * w);
                    }
                // Float32 rows and products, summed in float64 every BlockedProducts.Flush rows, as the reconstruction's sums: twice
                // the lanes of the float64 kernel. The moments of ResNet-50's 4,608-feature patches (4,096 observations each)
                // were most of the calibrated ranking's own CPU time.
                Gather(chunk, take);
            }
        }

        /// <summary>
        /// Adds the <paramref name="take"/> rows in <paramref name="chunk"/> to the pending ones, and their products to the Gram
        /// once <see cref="PendingRows"/> are in. Why: a batch of ResNet-50 is one image, which holds 16 of the 4,096 rows a
        /// 4,608-feature request samples, and each product call reads and writes the whole float64 Gram (85 MB of its lower
        /// half) for them: 256 such calls a request made its moments memory-bound.
        /// </summary>
        private void Gather(float[] chunk, int take)
        {
            var pending = _pending ??= new float[(long)_features * PendingRows];
            for (int done = 0; done < take;)
            {
                int here = Math.Min(take - done, PendingRows - _pendingCount);
                for (int f = 0; f < _features; f++)
                    chunk.AsSpan((int)((long)f * ChunkRows + done), here).CopyTo(pending.AsSpan((int)((long)f * PendingRows + _pendingCount), here));
                done += here;
                _pendingCount += here;
                if (_pendingCount == PendingRows) Flush();
            }
        }

        private void Flush()
        {
            if (_pendingCount > 0)
                BlockedProducts.Accumulate(_pending!, _features, _pending!, _features, _pendingCount, PendingRows, _gram, _features, parallel: true, lowerOnly: true);
            _pendingCount = 0;
        }

        /// <summary>Mean σ'(z) over the logits' channels and the block of positions that <paramref name="row"/> (image-local) maps to.</summary>
        private double SigmoidSlope(ReadOnlySpan<float> logits, long row)
        {
            var z = _logitsShape!;
            long image = row / _rowsPerImage, position = row % _rowsPerImage;
            long logitsArea = 1;
            for (int d = 2; d < z.Length; d++) logitsArea *= z[d];
            // Position → its multi-index; the block is [i·f, (i + 1)·f) on each spatial axis (f = the size ratio).
            int dims = z.Length - 2;
            var index = new long[dims];
            for (int d = dims - 1; d >= 0; d--) { index[d] = position % _shape[d + 2]; position /= _shape[d + 2]; }
            long block = 1;
            for (int d = 0; d < dims; d++) block *= z[d + 2] / _shape[d + 2];
            double sum = 0;
            for (long c = 0; c < z[1]; c++)
                for (long b = 0; b < block; b++)
                {
                    long rest = b, offset = 0;
                    for (int d = dims - 1, stride = 1; d >= 0; d--)
                    {
                        long f = z[d + 2] / _shape[d + 2];
                        offset += (index[d] * f + rest % f) * stride;
                        stride *= (int)z[d + 2];
                        rest /= f;
                    }
                    double s = 1 / (1 + Math.Exp(-logits[(int)((image * z[1] + c) * logitsArea + offset)]));
                    sum += s * (1 - s);
                }
            return sum / (z[1] * block);
        }

        public double[] Moments()
        {
            Flush();
            _pending = null;
            int n = _features;
            double scale = _rows.Length > 0 ? 1.0 / _rows.Length : 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j <= i; j++) _gram[(long)j * n + i] = _gram[(long)i * n + j] *= scale;
            return _gram;
        }
    }
}
