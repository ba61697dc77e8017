using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Spectral;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Calibration;

/// <summary>
/// What removing one group's channels does to the model's outputs: the group's readers get the weights the
/// ranking's re-fit gives them on the kept channels (<see cref="ChannelRefit"/>; nothing else changes), and the
/// model runs on a few calibration samples. Why: the ranking's error curve is local (the readers' outputs), and
/// the same local error costs the outputs far more in some groups than in others (PP-OCRv4 rec: 27 to 580 times
/// across groups, rising with depth), which one global threshold on local curves cannot see.
/// </summary>
public static class GroupSensitivity
{
    /// <summary>One group to measure: its readers with their moments, and the channels it would keep.</summary>
    public sealed record Candidate(IReadOnlyList<(GroupReaders.Reader Reader, ConsumerStatistics Statistics)> Readers, int[] Keep);

    /// <summary>
    /// Per group, the relative squared error of the model's float outputs, Σ‖y − y₀‖² / Σ‖y₀‖² averaged over outputs,
    /// with only that group pruned. Groups whose readers cannot all be re-weighted in place (a weight behind a Cast,
    /// shared, or not a plain Conv/ConvTranspose/Gemm) are left out.
    /// </summary>
    public static Dictionary<int, double> Measure(OnnxModel model, IReadOnlyDictionary<int, Candidate> candidates, IReadOnlyList<NamedTensor> samples,
        Provider provider = Provider.Cpu)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(candidates);
        var result = new Dictionary<int, double>();
        var plans = new Dictionary<int, List<Edit>>();
        var owners = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (id, candidate) in candidates)
        {
            var edits = new List<Edit>();
            foreach (var (reader, statistics) in candidate.Readers)
                if (EditFor(model.Graph, reader, statistics) is { } edit) edits.Add(edit);
                else { edits = null; break; }
            // A weight two readers of the group share cannot be set for each alone (groups are measured one at a time).
            if (edits is null || edits.Select(e => e.Weight).Distinct().Count() != edits.Count) continue;
            foreach (var e in edits) owners[e.Weight] = id;
            plans[id] = edits;
        }
        if (plans.Count == 0) return result;
        // Weights held in Constant nodes become initializers of a copy, so that the runner can feed them.
        using var copy = owners.Keys.Any(w => model.Graph.Initializer(w) is null) ? WithInitializers(model, owners.Keys) : null;
        // Fully optimised (21 runs of the whole model on PP-OCRv4 rec), and one sample per run: a sample's activations stay
        // in the caches between operators (rec's check: 10.1 → 6.7 CPU s with both). ONNX Runtime computes each sample
        // alike whatever the batch, and the sums run over the samples in order, so the figures are those of one batch.
        // Candidates run side by side, each on one ONNX Runtime thread: one sample's small kernels split over two threads
        // spent more in hand-overs than they saved (rec's check: 6.5 → 6.0–6.2 CPU s on one thread, load 25).
        int workers = provider == Provider.Cpu ? Math.Min(Environment.ProcessorCount, plans.Count) : 1;
        using var runner = new ModelRunner(copy ?? model, provider, replaceable: owners.Keys.ToHashSet(StringComparer.Ordinal), optimize: true,
            intraOpThreads: workers > 1 ? 1 : 0);
        var chunks = new List<IReadOnlyList<NamedTensor>>();
        if (ModelRunner.RunsWhole(runner.Inputs, samples, batch: 1)) chunks.Add(samples);
        else
            for (long first = 0; first < samples[0].Shape[0]; first++) chunks.Add([.. samples.Select(t => t.Rows(first, 1))]);
        // The reference runs side by side too, each into its own place: one after another they left a core idle before
        // the candidates (PP-OCRv4 rec: 12 runs on each of three tails).
        var reference = new IReadOnlyList<NamedTensor>[chunks.Count];
        Parallel.For(0, chunks.Count, new ParallelOptions { MaxDegreeOfParallelism = workers }, c => reference[c] = runner.Run(chunks[c]));
        var ids = plans.Keys.ToArray();
        var damage = new double[ids.Length];
        Parallel.For(0, ids.Length, new ParallelOptions { MaxDegreeOfParallelism = workers }, k =>
        {
            var weights = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var e in plans[ids[k]]) weights[e.Weight] = e.Apply(candidates[ids[k]].Keep);
            var sums = new ErrorSums(reference[0].Count);
            // Each run's outputs go into the last one's arrays: fresh ones were a fault a page (rec: 240 of 1 MB).
            IReadOnlyList<NamedTensor>? outputs = null;
            for (int c = 0; c < chunks.Count; c++) sums.Add(reference[c], outputs = runner.Run(chunks[c], weights, reuse: outputs));
            damage[k] = sums.Relative();
        });
        for (int k = 0; k < ids.Length; k++) result[ids[k]] = damage[k];
        return result;
    }

    /// <summary>Per float output with energy, Σ(y − y₀)² / Σy₀² over the samples added (in the order added), averaged over those outputs.</summary>
    private sealed class ErrorSums(int outputs)
    {
        private readonly double[] _energy = new double[outputs], _error = new double[outputs];
        private readonly bool[] _used = new bool[outputs];

        public void Add(IReadOnlyList<NamedTensor> reference, IReadOnlyList<NamedTensor> outputs)
        {
            for (int i = 0; i < reference.Count; i++)
            {
                if (reference[i].Data is not float[] y0 || outputs[i].Data is not float[] y || y.Length != y0.Length) continue;
                double energy = _energy[i], error = _error[i];
                for (int k = 0; k < y0.Length; k++)
                {
                    energy += (double)y0[k] * y0[k];
                    double d = (double)y[k] - y0[k];
                    error += d * d;
                }
                _energy[i] = energy;
                _error[i] = error;
                _used[i] = true;
            }
        }

        public double Relative()
        {
            double sum = 0;
            int count = 0;
            for (int i = 0; i < _energy.Length; i++)
            {
                if (!_used[i] || !(_energy[i] > 0)) continue;
                sum += double.IsFinite(_error[i]) ? _error[i] / _energy[i] : 1;
                count++;
            }
            return count == 0 ? 0 : sum / count;
        }
    }

    private static OnnxModel WithInitializers(OnnxModel model, IEnumerable<string> weights)
    {
        var copy = model.Clone();
        var graph = copy.Graph;
        foreach (string w in weights)
            if (graph.Initializer(w) is null && graph.Producer(w) is { OpType: "Constant" } constant && graph.ResolveWeight(w) is { } resolved)
            {
                graph.AddInitializer(Tensor.FromFloats(w, resolved.Tensor.Dims, resolved.Tensor.ToFloats()));
                graph.RemoveNode(constant);
            }
        graph.Reindex();
        return copy;
    }

    /// <summary>
    /// A reader's weight viewed as [outer, channels, inner] around its input-channel axis (1 for Conv and a Gemm with
    /// transB, 0 for ConvTranspose and a Gemm without; a flattened map's H·W features of a channel go to inner); the group's channels lie at <see cref="GroupReaders.Reader.Positions"/> on that axis. With one
    /// feature per channel the re-fit mixes channels alike at every (outer, inner); with a conv's patch features
    /// (taps = inner) it mixes (channel, tap) features for each output.
    /// </summary>
    private sealed record Edit(string Weight, float[] Original, long Outer, long Channels, long Inner, GroupReaders.Reader Reader, ConsumerStatistics Statistics)
    {
        public float[] Apply(int[] keep)
        {
            var w = (float[])Original.Clone();
            var x = ChannelRefit.Transfer(Statistics, keep, out var kept, out var dropped);
            int t = Statistics.Taps, r = kept.Length, j = dropped.Length;
            if (r == 0 || j == 0) return w;
            var positions = Reader.Positions;
            // Index of feature f (channel-major, then tap) in row (o, i) of the weight (i is the tap when t > 1).
            long inner = t > 1 ? 1 : Inner;
            int rows = checked((int)(Outer * inner));
            long At(int row, int f) => ((row / inner) * Channels + positions[f / t]) * Inner + (t > 1 ? f % t : row % inner);
            // Every row's kept weights gain its dropped ones through X: W_R += W_J·Xᵀ, one matrix product.
            var dropping = new double[(long)rows * j];
            for (int row = 0; row < rows; row++)
                for (int q = 0; q < j; q++) dropping[(long)row * j + q] = w[At(row, dropped[q])];
            var gain = new double[(long)rows * r];
            Gemm.Multiply(rows, r, j, 1.0, dropping, j, false, x, j, true, gain, r);
            for (int row = 0; row < rows; row++)
            {
                for (int p = 0; p < r; p++) w[At(row, kept[p])] += (float)gain[(long)row * r + p];
                for (int q = 0; q < j; q++) w[At(row, dropped[q])] = 0;
            }
            return w;
        }
    }

    private static Edit? EditFor(Graph graph, GroupReaders.Reader reader, ConsumerStatistics statistics)
    {
        var layer = reader.Layer;
        int axis = layer.OpType switch
        {
            "Conv" => 1,
            "ConvTranspose" => 0,
            "Gemm" when layer.GetInt("transA", 0) == 0 => layer.GetInt("transB", 0) == 0 ? 0 : 1,
            _ => -1,
        };
        string name = layer.Input(1);
        if (axis < 0 || layer.GetInt("group", 1) != 1 || graph.ResolveWeight(name) is not { PassThrough.Count: 0 } weight
            || weight.Tensor.DataType != DataType.Float || weight.Tensor.Rank < 2) return null;
        var tensor = weight.Tensor;
        long[] dims = tensor.Dims;
        long outer = dims.Take(axis).Aggregate(1L, (a, b) => a * b), inner = dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
        long channels = dims[axis];
        if (layer.OpType == "Gemm")
        {
            // A Gemm reading a channel-major flatten of a C×H×W map: channel c owns the H·W features c·H·W …, so the
            // weight is [outer, C, H·W·inner] around the map's channels (each row of the reader's weights holds them all).
            long perChannel = reader.Weights.Cols / Math.Max(outer * inner, 1);
            if (perChannel < 1 || channels % perChannel != 0 || reader.Weights.Cols != outer * inner * perChannel) return null;
            channels /= perChannel;
            inner *= perChannel;
        }
        if (statistics.Taps != 1 && statistics.Taps != inner) return null;
        if (reader.Positions.Any(p => p < 0 || p >= channels)) return null;
        return new Edit(name, tensor.ToFloats(), outer, channels, inner, reader, statistics);
    }
}
