using OnnxSlim.GraphIO;

namespace OnnxSlim.Runtime.Recovery;

/// <summary>
/// Second moments E[x·xᵀ] over the channel axis (axis 1) of chosen activations of the original model,
/// from calibration data: every spatial position of every sample is one observation of the channel
/// vector x, sampled (seeded) so the cost stays bounded on large maps and wide layers. This is what a layer reading the
/// activation "sees" of its input channels, before any pruning.
/// </summary>
public static class ChannelMoments
{
    private const int ChunkRows = 1024;

    /// <summary>Multiply-adds one value's moment matrix may cost (C²·observations): wide layers get fewer observations.</summary>
    private const long WorkPerValue = 1L << 31;

    private const int MinObservations = 4096;

    /// <returns>Per value, its C×C moment matrix (row-major, symmetric), divided by the number of observations.</returns>
    public static IReadOnlyDictionary<string, double[]> Compute(OnnxModel model, IReadOnlyCollection<string> values,
        IReadOnlyList<NamedTensor> calibrationInputs, int maxObservations = 32768, int seed = 0, long batchBytes = 256L << 20)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(values);
        if (maxObservations < 1) throw new ArgumentException($"maxObservations must be at least 1, got {maxObservations}", nameof(maxObservations));
        var result = new Dictionary<string, double[]>(StringComparer.Ordinal);
        if (values.Count == 0) return result;
        var calibration = new CalibrationSet(calibrationInputs);
        var names = values.Distinct().ToArray();
        using var runner = new ModelRunner(SubModel.Build(model, names).Bytes);
        var index = runner.OutputNames.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);

        // The first sample gives every value's per-sample size, hence a batch size within the byte budget.
        var first = runner.Run(calibration.Slice(0, 1));
        long perImage = first.Sum(t => t.ElementCount) * sizeof(float);
        int batch = (int)Math.Clamp(batchBytes / Math.Max(perImage, 1), 1, calibration.Images);

        var sums = new Dictionary<string, Accumulator>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            long[] shape = first[index[name]].Shape;
            if (shape.Length < 2) throw new ArgumentException($"value '{name}' has shape {NamedTensor.FormatShape(shape)}; channel moments need [N, C, …]");
            int channels = checked((int)shape[1]);
            long positions = shape.Skip(2).Aggregate(1L, (a, b) => a * b);
            int observations = (int)Math.Clamp(WorkPerValue / ((long)channels * channels), Math.Min(MinObservations, maxObservations), maxObservations);
            var rows = PositionSampler.Sample(positions * calibration.Images, observations, PositionSampler.LayerSeed(seed, name));
            sums[name] = new Accumulator(channels, positions, rows);
        }
        for (int start = 0; start < calibration.Images; start += batch)
        {
            int count = Math.Min(batch, calibration.Images - start);
            var outputs = start == 0 && count == 1 ? first : runner.Run(calibration.Slice(start, count));
            foreach (var name in names) sums[name].Add(outputs[index[name]].AsFloats(), start, count);
        }
        foreach (var name in names) result[name] = sums[name].Moments();
        return result;
    }

    /// <summary>Running XᵀX of the sampled channel vectors of one value; rows are gathered feature-major in chunks.</summary>
    private sealed class Accumulator(int channels, long positions, long[] rows)
    {
        private readonly double[] _gram = new double[(long)channels * channels];
        private readonly double[] _chunk = new double[(long)channels * ChunkRows];
        private int _filled;
        private int _next; // first row (index into rows) not consumed yet

        public void Add(float[] data, int firstImage, int images)
        {
            long end = (firstImage + images) * positions;
            for (; _next < rows.Length && rows[_next] < end; _next++)
            {
                long row = rows[_next];
                long image = row / positions - firstImage, position = row % positions;
                long at = image * channels * positions + position;
                for (int c = 0; c < channels; c++) _chunk[(long)c * ChunkRows + _filled] = data[at + c * positions];
                if (++_filled == ChunkRows) Flush();
            }
        }

        public double[] Moments()
        {
            Flush();
            int n = channels;
            double scale = rows.Length > 0 ? 1.0 / rows.Length : 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j <= i; j++) _gram[(long)j * n + i] = _gram[(long)i * n + j] *= scale;
            return _gram;
        }

        private void Flush()
        {
            if (_filled == 0) return;
            BlockedProducts.Accumulate(_chunk, channels, _chunk, channels, _filled, ChunkRows, _gram, channels, lowerOnly: true);
            _filled = 0;
        }
    }
}
