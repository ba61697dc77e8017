using System.Numerics.Tensors;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// Greedy elimination of a group's channels by the error they leave in the layers that read them, when
/// those layers are re-fitted by least squares on the kept channels (Optimal Brain Surgeon over whole
/// input channels): removing channel j raises a reader's squared output error by K_jj / [G⁻¹]_jj, where G
/// is the channel moment matrix and K = W·Wᵀ its weights' Gram. The cheapest channel goes, G⁻¹ and K are
/// updated for the re-fitted weights, and so on down to one channel. Readers are weighted by their
/// output energy tr(K·G), so <see cref="RelativeError"/> is the mean relative output error of the readers.
/// </summary>
public sealed class ChannelElimination
{
    internal const double Damping = 1e-2; // of the mean channel moment, so dead channels keep G invertible
    private const int ParallelRows = 512;

    private ChannelElimination(int[] removalOrder, double[] relativeError)
    {
        RemovalOrder = removalOrder;
        RelativeError = relativeError;
    }

    public int Width => RemovalOrder.Length;

    /// <summary>Channels in the order they were removed; the last one is the most important.</summary>
    public int[] RemovalOrder { get; }

    /// <summary>[k]: relative output error with k channels kept (k = 0..Width; [Width] = 0), non-increasing in k.</summary>
    public double[] RelativeError { get; }

    /// <summary>The <paramref name="count"/> channels kept last, sorted.</summary>
    public int[] Keep(int count)
    {
        if (count < 1 || count > Width) throw new ArgumentException($"keep count {count} is outside [1, {Width}]", nameof(count));
        var keep = RemovalOrder.AsSpan(Width - count).ToArray();
        Array.Sort(keep);
        return keep;
    }

    public static ChannelElimination Run(IReadOnlyList<ConsumerStatistics> consumers)
    {
        ArgumentNullException.ThrowIfNull(consumers);
        if (consumers.Count == 0) throw new ArgumentException("channel elimination needs at least one reading layer", nameof(consumers));
        int n = consumers[0].Width;
        var readers = new List<Reader>();
        foreach (var c in consumers)
        {
            if (c.Width != n) throw new ArgumentException($"readers disagree on the group width: {n} and {c.Width}", nameof(consumers));
            if (c.Moments.Length != n * n) throw new ArgumentException($"moments hold {c.Moments.Length} values, {n}×{n} needs {n * n}", nameof(consumers));
            if (Reader.Create(c) is { } r) readers.Add(r);
        }

        // The channels still in play occupy positions [0, m) of every reader's matrices: the removed one is
        // swapped to position m − 1 first, so each update touches only the shrinking leading block.
        var channelAt = Enumerable.Range(0, n).ToArray();
        var order = new int[n];
        var error = new double[n + 1];
        double cumulative = 0;
        for (int m = n; m > 0; m--)
        {
            int best = 0;
            double bestCost = double.PositiveInfinity;
            for (int p = 0; p < m; p++)
            {
                double cost = 0;
                foreach (var r in readers) cost += r.Cost(p);
                if (cost < bestCost) (best, bestCost) = (p, cost);
            }
            cumulative += Math.Max(bestCost, 0);
            order[n - m] = channelAt[best];
            error[m - 1] = cumulative;
            (channelAt[best], channelAt[m - 1]) = (channelAt[m - 1], channelAt[best]);
            foreach (var r in readers) r.RemoveAndShrink(best, m);
        }
        // Relative to the readers' energy; rounding and damping can push the sum a little past 1.
        double total = readers.Count;
        for (int k = 0; k <= n; k++) error[k] = total > 0 ? Math.Min(error[k] / total, 1) : 0;
        for (int k = n - 1; k >= 0; k--) error[k] = Math.Max(error[k], error[k + 1]);
        return new ChannelElimination(order, error);
    }

    /// <summary>One reader's damped inverse moments and weight Gram, updated as channels go; costs are relative to its energy.</summary>
    private sealed class Reader
    {
        private readonly int _n;
        private readonly double[] _inverse, _k;
        private readonly double _scale;

        private Reader(int n, double[] inverse, double[] k, double scale)
        {
            _n = n;
            _inverse = inverse;
            _k = k;
            _scale = scale;
        }

        /// <summary>Null for a reader whose output carries no energy (all-zero weights or inputs): it cannot rank channels.</summary>
        public static Reader? Create(ConsumerStatistics c)
        {
            int n = c.Width;
            var k = WeightGram(c.Weights);
            double energy = 0, trace = 0;
            for (int i = 0; i < n; i++)
            {
                trace += c.Moments[i * n + i];
                energy += TensorPrimitives.Dot(new ReadOnlySpan<double>(k, i * n, n), new ReadOnlySpan<double>(c.Moments, i * n, n));
            }
            if (!(energy > 0) || !(trace > 0)) return null;
            var damped = (double[])c.Moments.Clone();
            double damping = Damping * trace / n;
            for (int i = 0; i < n; i++) damped[i * n + i] += damping;
            return new Reader(n, SymmetricInverse.Invert(damped, n), k, 1 / energy);
        }

        public double Cost(int j) => _scale * _k[j * _n + j] / _inverse[j * _n + j];

        /// <summary>
        /// Drops the channel at position <paramref name="p"/> of the m in play: the least-squares re-fit moves
        /// every remaining channel's weights by −(G⁻¹_ip / G⁻¹_pp)·w_p, which updates K in two rank-one terms;
        /// G⁻¹ loses row and column p. Position p then takes the channel from position m − 1.
        /// </summary>
        public void RemoveAndShrink(int p, int m)
        {
            int n = _n;
            Swap(_k, n, p, m - 1);
            Swap(_inverse, n, p, m - 1);
            int j = m - 1, rest = m - 1;
            double pivot = _inverse[j * n + j];
            var a = new double[rest];
            for (int i = 0; i < rest; i++) a[i] = _inverse[i * n + j] / pivot;
            double kjj = _k[j * n + j];
            // Rows are independent; wide groups (the last to finish) split them over the cores.
            Parallel.For(0, rest, new ParallelOptions { MaxDegreeOfParallelism = rest >= ParallelRows ? -1 : 1 }, i =>
            {
                var kj = new ReadOnlySpan<double>(_k, j * n, rest);
                var gj = new ReadOnlySpan<double>(_inverse, j * n, rest);
                var ki = new Span<double>(_k, i * n, rest);
                double ai = a[i], kij = _k[i * n + j];
                TensorPrimitives.MultiplyAdd(kj, -ai, ki, ki);
                TensorPrimitives.MultiplyAdd(a, ai * kjj - kij, ki, ki);
                var gi = new Span<double>(_inverse, i * n, rest);
                TensorPrimitives.MultiplyAdd(gj, -ai, gi, gi);
            });
        }

        /// <summary>Exchanges rows and columns p and q of a symmetric n×n matrix.</summary>
        private static void Swap(double[] a, int n, int p, int q)
        {
            if (p == q) return;
            for (int i = 0; i < n; i++) (a[p * n + i], a[q * n + i]) = (a[q * n + i], a[p * n + i]);
            for (int i = 0; i < n; i++) (a[i * n + p], a[i * n + q]) = (a[i * n + q], a[i * n + p]);
        }

        private static double[] WeightGram(FilterMatrix w)
        {
            int n = w.Rows, cols = w.Cols;
            var k = new double[n * n];
            for (int i = 0; i < n; i++)
                for (int j = 0; j <= i; j++)
                    k[i * n + j] = k[j * n + i] = TensorPrimitives.Dot(w.Data.Slice(i * cols, cols), w.Data.Slice(j * cols, cols));
            return k;
        }
    }
}
