namespace OnnxSlim.Spectral;

/// <summary>
/// A channel group's filters as a dense row-major matrix: row j is channel j's effective filter
/// (the caller stacks the unfoldings of every conv producing the channel, affine already folded in).
/// Either stored, or streamed from an <see cref="IRowSource"/>: then the Gram is built panel by panel from the
/// source and the matrix itself is only stored when a step needs its rows (<see cref="Data"/>, <see cref="Row"/>).
/// </summary>
public sealed class FilterMatrix
{
    private double[]? _data;
    private readonly IRowSource? _source;
    private object? _materializing;

    public FilterMatrix(int rows, int cols, double[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (rows < 1) throw new ArgumentException($"rows must be at least 1, got {rows}", nameof(rows));
        if (cols < 1) throw new ArgumentException($"cols must be at least 1, got {cols}", nameof(cols));
        if ((long)rows * cols != data.Length)
            throw new ArgumentException($"data has {data.Length} values, expected rows*cols = {rows}*{cols} = {(long)rows * cols}", nameof(data));
        for (int i = 0; i < data.Length; i++)
            if (!double.IsFinite(data[i]))
                throw new ArgumentException($"data[{i}] = {data[i]} is not finite (row {i / cols}, col {i % cols})", nameof(data));
        Rows = rows;
        Cols = cols;
        _data = data;
    }

    /// <summary>A matrix whose rows <paramref name="source"/> produces on demand; every value must be finite.</summary>
    public FilterMatrix(int rows, int cols, IRowSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (rows < 1) throw new ArgumentException($"rows must be at least 1, got {rows}", nameof(rows));
        if (cols < 1) throw new ArgumentException($"cols must be at least 1, got {cols}", nameof(cols));
        Rows = rows;
        Cols = cols;
        _source = source;
    }

    /// <summary>The source to stream rows from, while the matrix is not stored.</summary>
    internal IRowSource? Streamed => Volatile.Read(ref _data) is null ? _source : null;

    // Gram + tridiagonal form left by FilterSpectrum.Compute for GemSelector (large groups only);
    // taken, i.e. released, by the selection. A derived-value cache: the matrix itself never changes.
    private GramFactorization? _factorization;

    internal void KeepFactorization(GramFactorization f) => Volatile.Write(ref _factorization, f);

    internal GramFactorization? TakeFactorization() => Interlocked.Exchange(ref _factorization, null);

    /// <summary>Drops the factorisation a spectrum computation cached for GEM (when no GEM selection follows).</summary>
    public void ReleaseCache() => Interlocked.Exchange(ref _factorization, null)?.Release();

    /// <summary>The cached factorisation, left in place.</summary>
    internal GramFactorization? PeekFactorization() => Volatile.Read(ref _factorization);

    // The Gram a GEM selection kept for the group's data-free fold (float32-product Grams only); taken by the planner.
    private KeptGram? _keptGram;

    internal void KeepGram(KeptGram gram) => Volatile.Write(ref _keptGram, gram);

    /// <summary>The Gram the selection kept for the fold (see <see cref="KeptGram"/>), handed over once; null when none was kept.</summary>
    public KeptGram? TakeKeptGram() => Interlocked.Exchange(ref _keptGram, null);

    public int Rows { get; }
    public int Cols { get; }

    /// <summary>Row j into <paramref name="destination"/> (Cols values), from the source while the matrix is not stored (no store is made).</summary>
    internal void ReadRow(int j, Span<double> destination) => ReadRow(j, 0, destination[..Cols]);

    /// <summary>Columns [<paramref name="col"/>, col + destination.Length) of row j, from the source while the matrix is not stored (no store is made).</summary>
    internal void ReadRow(int j, int col, Span<double> destination)
    {
        if (Streamed is { } source) source.Read(j, col, destination);
        else Row(j).Slice(col, destination.Length).CopyTo(destination);
    }

    /// <summary>The row-major values (not copied: the caller hands the array over; a streamed matrix is stored on first use).</summary>
    public ReadOnlySpan<double> Data => Stored();

    public ReadOnlySpan<double> Row(int j)
    {
        if ((uint)j >= (uint)Rows) throw new ArgumentException($"row {j} is outside 0..{Rows - 1}", nameof(j));
        return new ReadOnlySpan<double>(Stored(), j * Cols, Cols);
    }

    private double[] Stored() => LazyInitializer.EnsureInitialized(ref _data, ref _materializing, () =>
    {
        var d = new double[(long)Rows * Cols];
        for (int j = 0; j < Rows; j++) _source!.Read(j, 0, d.AsSpan(checked((int)((long)j * Cols)), Cols));
        return d;
    });

    /// <summary>A new matrix made of the given rows, in the given order.</summary>
    public FilterMatrix SelectRows(ReadOnlySpan<int> rows)
    {
        if (rows.Length == 0) throw new ArgumentException("at least one row must be selected", nameof(rows));
        var d = new double[rows.Length * Cols];
        for (int i = 0; i < rows.Length; i++) Row(rows[i]).CopyTo(d.AsSpan(i * Cols, Cols));
        return new FilterMatrix(rows.Length, Cols, d);
    }

    /// <summary>Builds a matrix from a float32 buffer (ONNX weights) widened to float64.</summary>
    public static FilterMatrix FromSingle(int rows, int cols, ReadOnlySpan<float> data)
    {
        if ((long)rows * cols != data.Length)
            throw new ArgumentException($"data has {data.Length} values, expected rows*cols = {rows}*{cols}", nameof(data));
        var d = new double[data.Length];
        for (int i = 0; i < d.Length; i++) d[i] = data[i];
        return new FilterMatrix(rows, cols, d);
    }
}
