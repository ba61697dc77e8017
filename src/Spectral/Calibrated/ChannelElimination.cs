using System.Numerics.Tensors;
using OnnxSlim.Spectral.Numerics;

namespace OnnxSlim.Spectral;

/// <summary>
/// Greedy elimination of a group's channels by the error they leave in the layers that read them, when
/// those layers are re-fitted by least squares on the kept channels (Optimal Brain Surgeon over whole
/// input channels): with G the moments of a reader's input features and K = W·Wᵀ the Gram of its weights
/// over them, removing channel j (its block J of taps) raises that reader's squared output error by
/// tr([G⁻¹]_JJ⁻¹·K_JJ) — K_jj / [G⁻¹]_jj for one tap. The cheapest channel goes, G⁻¹ and K are updated for
/// the re-fitted weights, and so on down to one channel. Readers are weighted by their output energy
/// tr(K·G), so <see cref="RelativeError"/> is the mean relative output error of the readers.
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
            if (c.Taps < 1 || c.Weights.Cols % c.Taps != 0)
                throw new ArgumentException($"{c.Taps} taps per channel do not divide the {c.Weights.Cols} weights of a channel", nameof(consumers));
            long features = (long)n * c.Taps;
            if (c.Moments.Length != features * features)
                throw new ArgumentException($"moments hold {c.Moments.Length} values, {features}×{features} needs {features * features}", nameof(consumers));
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

    /// <summary>
    /// One reader's damped inverse moments and weight Gram over its features (channel-major, t taps per
    /// channel), updated as channels go; costs are relative to its energy.
    /// </summary>
    private sealed class Reader
    {
        private readonly int _n, _t;
        private readonly double[] _inverse, _k;
        private readonly double _scale;

        private Reader(int n, int t, double[] inverse, double[] k, double scale)
        {
            _n = n;
            _t = t;
            _inverse = inverse;
            _k = k;
            _scale = scale;
        }

        /// <summary>Null for a reader whose output carries no energy (all-zero weights or inputs): it cannot rank channels.</summary>
        public static Reader? Create(ConsumerStatistics c)
        {
            int t = c.Taps, n = c.Width * t;
            var k = WeightGram(c.Weights, t);
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
            return new Reader(n, t, SymmetricInverse.Invert(damped, n), k, 1 / energy);
        }

        /// <summary>tr([G⁻¹]_JJ⁻¹·K_JJ) for the taps J of the channel at position p, relative to the energy.</summary>
        public double Cost(int p)
        {
            int n = _n, t = _t, j0 = p * t;
            if (t == 1) return _scale * _k[j0 * n + j0] / _inverse[j0 * n + j0];
            var g = new double[t * t];
            var column = new double[t];
            var x = new double[t];
            for (int a = 0; a < t; a++)
                for (int b = 0; b < t; b++) g[a * t + b] = _inverse[(j0 + a) * n + j0 + b];
            double cost = 0;
            for (int b = 0; b < t; b++)
            {
                for (int a = 0; a < t; a++) column[a] = _k[(j0 + a) * n + j0 + b];
                SmallCholesky.Solve(g, t, column, x); // column b of G_JJ⁻¹·K_JJ
                cost += x[b];
            }
            return _scale * cost;
        }

        /// <summary>
        /// Drops the channel at position <paramref name="p"/> of the m in play: the least-squares re-fit moves
        /// every remaining feature's weights by −Σ_a M_ia·w_(J,a) with M = G⁻¹_RJ·[G⁻¹_JJ]⁻¹, which updates K
        /// in rank-t terms; G⁻¹ loses rows and columns J. Position p then takes the channel from position m − 1.
        /// </summary>
        public void RemoveAndShrink(int p, int m)
        {
            int n = _n, t = _t;
            for (int a = 0; a < t; a++) Swap(_k, n, p * t + a, (m - 1) * t + a);
            for (int a = 0; a < t; a++) Swap(_inverse, n, p * t + a, (m - 1) * t + a);
            int j0 = (m - 1) * t, rest = j0;
            if (rest == 0) return;

            // M (rest × t, stored column by column) = G⁻¹_RJ · [G⁻¹_JJ]⁻¹.
            var gjj = new double[t * t];
            for (int a = 0; a < t; a++)
                for (int b = 0; b < t; b++) gjj[a * t + b] = _inverse[(j0 + a) * n + j0 + b];
            var mCols = new double[t][];
            for (int b = 0; b < t; b++) mCols[b] = new double[rest];
            var rhs = new double[t];
            var sol = new double[t];
            for (int i = 0; i < rest; i++)
            {
                for (int a = 0; a < t; a++) rhs[a] = _inverse[(j0 + a) * n + i];
                if (t == 1) sol[0] = rhs[0] / gjj[0];
                else SmallCholesky.Solve(gjj, t, rhs, sol);
                for (int b = 0; b < t; b++) mCols[b][i] = sol[b];
            }
            var kjj = new double[t * t];
            for (int a = 0; a < t; a++)
                for (int b = 0; b < t; b++) kjj[a * t + b] = _k[(j0 + a) * n + j0 + b];

            // Rows are independent; wide groups (the last to finish) split them over the cores.
            Parallel.For(0, rest, new ParallelOptions { MaxDegreeOfParallelism = rest >= ParallelRows ? -1 : 1 }, i =>
            {
                var ki = new Span<double>(_k, i * n, rest);
                var gi = new Span<double>(_inverse, i * n, rest);
                Span<double> coefficient = stackalloc double[t];
                for (int b = 0; b < t; b++)
                {
                    double c = -_k[i * n + j0 + b];
                    for (int a = 0; a < t; a++) c += mCols[a][i] * kjj[a * t + b];
                    coefficient[b] = c;
                }
                for (int a = 0; a < t; a++)
                {
                    double mia = mCols[a][i];
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<double>(_k, (j0 + a) * n, rest), -mia, ki, ki);
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<double>(_inverse, (j0 + a) * n, rest), -mia, gi, gi);
                }
                for (int b = 0; b < t; b++) TensorPrimitives.MultiplyAdd(mCols[b], coefficient[b], ki, ki);
            });
        }

        /// <summary>Exchanges rows and columns p and q of a symmetric n×n matrix.</summary>
        private static void Swap(double[] a, int n, int p, int q)
        {
            if (p == q) return;
            for (int i = 0; i < n; i++) (a[p * n + i], a[q * n + i]) = (a[q * n + i], a[p * n + i]);
            for (int i = 0; i < n; i++) (a[i * n + p], a[i * n + q]) = (a[i * n + q], a[i * n + p]);
        }

        /// <summary>K over features (channel j, tap a) = Σ_o w[o, j, a]·w[o, l, b]; a channel's row is ordered (output, tap).</summary>
        private static double[] WeightGram(FilterMatrix w, int t)
        {
            int channels = w.Rows, outputs = w.Cols / t, n = channels * t;
            var byFeature = new double[(long)n * outputs];
            for (int j = 0; j < channels; j++)
            {
                var row = w.Row(j);
                for (int o = 0; o < outputs; o++)
                    for (int a = 0; a < t; a++) byFeature[(long)(j * t + a) * outputs + o] = row[o * t + a];
            }
            var k = new double[(long)n * n];
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = n >= ParallelRows ? -1 : 1 }, i =>
            {
                var fi = new ReadOnlySpan<double>(byFeature, i * outputs, outputs);
                for (int j = 0; j <= i; j++)
                    k[(long)i * n + j] = k[(long)j * n + i] = TensorPrimitives.Dot(fi, new ReadOnlySpan<double>(byFeature, j * outputs, outputs));
            });
            return k;
        }
    }
}
