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

    public static ChannelElimination Run(IReadOnlyList<ConsumerStatistics> consumers) => Run(consumers, foldEvery: null);

    /// <param name="foldEvery">Removals between folds of a reader's records (tests); null: 64 features' worth.</param>
    internal static ChannelElimination Run(IReadOnlyList<ConsumerStatistics> consumers, int? foldEvery)
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
            if (Reader.Create(c, foldEvery) is { } r) readers.Add(r);
        }

        // Positions [0, m) hold the channels still in play; the removed one is swapped to position m − 1, which
        // fixes the order candidates are compared in (the first of equal costs wins).
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
                foreach (var r in readers) cost += r.Cost(channelAt[p]);
                if (cost < bestCost) (best, bestCost) = (p, cost);
            }
            cumulative += Math.Max(bestCost, 0);
            int channel = channelAt[best];
            order[n - m] = channel;
            error[m - 1] = cumulative;
            (channelAt[best], channelAt[m - 1]) = (channelAt[m - 1], channelAt[best]);
            if (m > 1) foreach (var r in readers) r.Remove(channel);
        }
        // Relative to the readers' energy; rounding and damping can push the sum a little past 1.
        double total = readers.Count;
        for (int k = 0; k <= n; k++) error[k] = total > 0 ? Math.Min(error[k] / total, 1) : 0;
        for (int k = n - 1; k >= 0; k--) error[k] = Math.Max(error[k], error[k + 1]);
        return new ChannelElimination(order, error);
    }

    /// <summary>
    /// One reader's damped inverse moments H = G⁻¹ and weight Gram K over its features (channel-major, t taps per
    /// channel), updated as channels go; costs are relative to its energy. Removing channel J (features J) re-fits
    /// the weights of the rest R: with M = H_RJ·[H_JJ]⁻¹, H becomes H_RR − M·H_JR and K becomes K_RR − M·Bᵀ − B·Mᵀ,
    /// B = K_RJ − ½·M·K_JJ. Why lazily: applied at once, each removal rewrites both n×n matrices (memory-bound,
    /// ~n³ traffic in all); here a removal only records M, H_RJ and B and updates the t×t diagonal blocks the costs
    /// read, a column block of the current H and K is rebuilt from the base and the records when one is needed,
    /// and every few removals the records are folded into the base (restricted to the channels left) in three
    /// matrix products, compute-bound. Same numbers up to rounding.
    /// </summary>
    private sealed class Reader
    {
        private readonly int _t, _foldEvery;
        private readonly double _scale;
        private readonly int[] _slotOf;    // channel → its slot in the base matrices, −1 once folded away
        private int[] _channelOfSlot;
        private readonly bool[] _removed;  // by channel
        private int _size;                 // features in the base matrices (slots × t)
        private double[] _h, _k;           // the base, _size × _size
        private readonly double[] _dh, _dk; // current t×t diagonal blocks, by channel
        private double[] _m, _p, _b;       // records since the last fold: _size rows × (_foldEvery·t) columns, one t-wide block per removal
        private int _steps;

        private Reader(int channels, int t, double[] inverse, double[] k, double scale, int? foldEvery)
        {
            _t = t;
            _foldEvery = foldEvery ?? Math.Max(4, 64 / t);
            _scale = scale;
            _size = channels * t;
            _h = inverse;
            _k = k;
            _slotOf = Enumerable.Range(0, channels).ToArray();
            _channelOfSlot = Enumerable.Range(0, channels).ToArray();
            _removed = new bool[channels];
            _dh = new double[channels * t * t];
            _dk = new double[channels * t * t];
            RefreshDiagonals();
            int cols = _foldEvery * t;
            _m = new double[_size * cols];
            _p = new double[_size * cols];
            _b = new double[_size * cols];
        }

        private int Columns => _foldEvery * _t;

        /// <summary>Null for a reader whose output carries no energy (all-zero weights or inputs): it cannot rank channels.</summary>
        public static Reader? Create(ConsumerStatistics c, int? foldEvery)
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
            return new Reader(c.Width, t, SymmetricInverse.Invert(damped, n), k, 1 / energy, foldEvery);
        }

        /// <summary>tr([H_JJ]⁻¹·K_JJ) for the taps J of <paramref name="channel"/>, relative to the energy.</summary>
        public double Cost(int channel)
        {
            int t = _t, at = channel * t * t;
            if (t == 1) return _scale * _dk[at] / _dh[at];
            var g = _dh.AsSpan(at, t * t).ToArray();
            var column = new double[t];
            var x = new double[t];
            double cost = 0;
            for (int b = 0; b < t; b++)
            {
                for (int a = 0; a < t; a++) column[a] = _dk[at + a * t + b];
                SmallCholesky.Solve(g, t, column, x); // column b of H_JJ⁻¹·K_JJ
                cost += x[b];
            }
            return _scale * cost;
        }

        /// <summary>Drops <paramref name="channel"/>: records the re-fit's update and applies it to the diagonal blocks of the channels left.</summary>
        public void Remove(int channel)
        {
            int t = _t, size = _size, cols = Columns, step = _steps * t, j0 = _slotOf[channel] * t;
            _removed[channel] = true;
            // Column block J of the current H and K: the base's, less the recorded updates.
            var hj = new double[size * t];
            var kj = new double[size * t];
            Rows(size, i =>
            {
                for (int a = 0; a < t; a++)
                {
                    int col = j0 + a;
                    var mi = new ReadOnlySpan<double>(_m, i * cols, step);
                    var bi = new ReadOnlySpan<double>(_b, i * cols, step);
                    hj[i * t + a] = _h[(long)i * size + col] - TensorPrimitives.Dot(mi, new ReadOnlySpan<double>(_p, col * cols, step));
                    kj[i * t + a] = _k[(long)i * size + col] - TensorPrimitives.Dot(mi, new ReadOnlySpan<double>(_b, col * cols, step))
                        - TensorPrimitives.Dot(bi, new ReadOnlySpan<double>(_m, col * cols, step));
                }
            });
            var gjj = new double[t * t];
            var kjj = new double[t * t];
            for (int a = 0; a < t; a++)
                for (int b = 0; b < t; b++)
                {
                    gjj[a * t + b] = hj[(j0 + a) * t + b];
                    kjj[a * t + b] = kj[(j0 + a) * t + b];
                }
            // This removal's record, row by row: M_i = H_iJ·[H_JJ]⁻¹, P_i = H_iJ, B_i = K_iJ − ½·M_i·K_JJ (zero outside play).
            Rows(size, i =>
            {
                var m = _m.AsSpan(i * cols + step, t);
                var p = _p.AsSpan(i * cols + step, t);
                var b = _b.AsSpan(i * cols + step, t);
                if (!InPlay(i))
                {
                    m.Clear();
                    p.Clear();
                    b.Clear();
                    return;
                }
                if (t == 1)
                {
                    m[0] = hj[i] / gjj[0];
                    p[0] = hj[i];
                    b[0] = kj[i] - 0.5 * m[0] * kjj[0];
                    return;
                }
                var rhs = hj.AsSpan(i * t, t).ToArray();
                var sol = new double[t];
                SmallCholesky.Solve(gjj, t, rhs, sol);
                sol.CopyTo(m);
                rhs.CopyTo(p);
                for (int c = 0; c < t; c++)
                {
                    double v = kj[i * t + c];
                    for (int a = 0; a < t; a++) v -= 0.5 * m[a] * kjj[a * t + c];
                    b[c] = v;
                }
            });
            // The diagonal blocks the costs read: H_QQ −= M_Q·P_Qᵀ, K_QQ −= M_Q·B_Qᵀ + B_Q·M_Qᵀ.
            for (int slot = 0; slot < _channelOfSlot.Length; slot++)
            {
                int q = _channelOfSlot[slot];
                if (_removed[q]) continue;
                int at = q * t * t, q0 = slot * t;
                for (int a = 0; a < t; a++)
                    for (int b = 0; b < t; b++)
                    {
                        double dh = 0, dk = 0;
                        for (int c = 0; c < t; c++)
                        {
                            double ma = _m[(q0 + a) * cols + step + c], mb = _m[(q0 + b) * cols + step + c];
                            dh += ma * _p[(q0 + b) * cols + step + c];
                            dk += ma * _b[(q0 + b) * cols + step + c] + _b[(q0 + a) * cols + step + c] * mb;
                        }
                        _dh[at + a * t + b] -= dh;
                        _dk[at + a * t + b] -= dk;
                    }
            }
            if (++_steps == _foldEvery) Fold();
        }

        private bool InPlay(int feature) => !_removed[_channelOfSlot[feature / _t]];

        /// <summary>Applies the records to the base restricted to the channels in play (compacted in place), then starts a new set of records.</summary>
        private void Fold()
        {
            int t = _t, size = _size, cols = Columns, width = _steps * t;
            var slots = Enumerable.Range(0, _channelOfSlot.Length).Where(s => !_removed[_channelOfSlot[s]]).ToArray();
            int kept = slots.Length * t;
            var features = new int[kept];
            for (int s = 0; s < slots.Length; s++)
                for (int a = 0; a < t; a++) features[s * t + a] = slots[s] * t + a;
            // Destinations never pass their sources (indexes only shrink), so both compact in place.
            foreach (var matrix in new[] { _h, _k })
                for (int i = 0; i < kept; i++)
                    for (int j = 0; j < kept; j++) matrix[(long)i * kept + j] = matrix[(long)features[i] * size + features[j]];
            var negM = new double[kept * width];
            var p = new double[kept * width];
            var b = new double[kept * width];
            for (int i = 0; i < kept; i++)
                for (int c = 0; c < width; c++)
                {
                    int from = features[i] * cols + c, to = i * width + c;
                    negM[to] = -_m[from];
                    p[to] = _p[from];
                    b[to] = _b[from];
                }
            // H −= M·Pᵀ; K −= M·Bᵀ + B·Mᵀ.
            BlockedProducts.Accumulate(negM, kept, p, kept, width, width, _h, kept, lowerOnly: false);
            BlockedProducts.Accumulate(negM, kept, b, kept, width, width, _k, kept, lowerOnly: false);
            BlockedProducts.Accumulate(b, kept, negM, kept, width, width, _k, kept, lowerOnly: false);
            _size = kept;
            foreach (var (channel, slot) in slots.Select((s, i) => (_channelOfSlot[s], i))) _slotOf[channel] = slot;
            for (int c = 0; c < _slotOf.Length; c++) if (_removed[c]) _slotOf[c] = -1;
            _channelOfSlot = [.. slots.Select(s => _channelOfSlot[s])];
            _steps = 0;
            Array.Clear(_m);
            Array.Clear(_p);
            Array.Clear(_b);
            RefreshDiagonals();
        }

        /// <summary>The diagonal blocks of the base (exact again after a fold, where the running updates drift by rounding).</summary>
        private void RefreshDiagonals()
        {
            int t = _t, size = _size;
            for (int slot = 0; slot < _channelOfSlot.Length; slot++)
            {
                int q = _channelOfSlot[slot], at = q * t * t, q0 = slot * t;
                for (int a = 0; a < t; a++)
                    for (int b = 0; b < t; b++)
                    {
                        _dh[at + a * t + b] = _h[(long)(q0 + a) * size + q0 + b];
                        _dk[at + a * t + b] = _k[(long)(q0 + a) * size + q0 + b];
                    }
            }
        }

        /// <summary>Rows [0, count) through <paramref name="body"/>; wide readers (the last to finish) split them over the cores.</summary>
        private static void Rows(int count, Action<int> body)
        {
            if (count >= ParallelRows) Parallel.For(0, count, body);
            else for (int i = 0; i < count; i++) body(i);
        }

        /// <summary>K over features (channel j, tap a) = Σ_o w[o, j, a]·w[o, l, b]; a channel's row is ordered (output, tap).</summary>
        private static double[] WeightGram(FilterMatrix w, int t)
        {
            int channels = w.Rows, outputs = w.Cols / t, n = channels * t;
            var k = new double[(long)n * n];
            // The rows (channel, tap) are read a depth panel at a time from the weights, which are not stored: VGG-16's
            // Flatten→Gemm reader (512 channels × 49 positions × 4,096 outputs) held them twice in float64, 1.6 GB.
            Gemm.GramOfRows(new TapRows(w, t), n, outputs, k, parallel: n >= ParallelRows);
            return k;
        }

        /// <summary>Row j·t + a of the reader's weights by feature: tap a of channel j, one value per output.</summary>
        private sealed class TapRows(FilterMatrix w, int t) : IRowSource
        {
            [ThreadStatic] private static double[]? t_segment;

            public void Read(int row, int col, Span<double> destination)
            {
                int j = row / t, a = row - j * t;
                if (t == 1)
                {
                    w.ReadRow(j, col, destination);
                    return;
                }
                int length = destination.Length * t;
                var segment = t_segment is { } s && s.Length >= length ? s : t_segment = new double[length];
                w.ReadRow(j, col * t, segment.AsSpan(0, length));
                for (int o = 0; o < destination.Length; o++) destination[o] = segment[o * t + a];
            }
        }
    }
}
