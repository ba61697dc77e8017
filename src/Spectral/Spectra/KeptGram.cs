namespace OnnxSlim.Spectral;

/// <summary>
/// The row Gram a GEM selection built for a group whose Gram takes float32 products (<see cref="RowGram.UsesSingle"/>),
/// kept after the selection for the data-free fold of the same group. Why: VGG-16's second classifier group's fold
/// built the same 4096 × 4096 Gram again (~1 CPU s of its ~1.4 s rewrite). An entry of a float32-product Gram depends
/// only on its two rows (each depth panel's products summed in column order, the panels summed in order; products
/// commute), not on where they sit or which other rows are listed, so a Gram of some of the rows in another order
/// (<see cref="RowGram.Compute"/>) holds the same bits, provided the rows are the same bits (<see cref="SameRows"/>).
/// </summary>
public sealed class KeptGram
{
    private LowerGram? _gram;
    private FilterMatrix? _rows;

    internal KeptGram(LowerGram gram, FilterMatrix rows)
    {
        if (!gram.SingleProducts) throw new ArgumentException("only a Gram of float32 products is kept", nameof(gram));
        if (gram.N != rows.Rows) throw new ArgumentException($"a Gram of {gram.N} rows for a matrix of {rows.Rows}", nameof(gram));
        _gram = gram;
        _rows = rows;
        Rows = rows.Rows;
        Cols = rows.Cols;
    }

    public int Rows { get; }
    public int Cols { get; }

    /// <summary>⟨row i, row k⟩.</summary>
    public double this[int i, int k] => (_gram ?? throw new InvalidOperationException("the kept Gram was released"))[i, k];

    /// <summary>Whether <see cref="Release"/> was called.</summary>
    public bool Released => Volatile.Read(ref _gram) is null;

    /// <summary>
    /// Hands the buffer back (it is 134 MB for 4096 rows) and lets the rows' source go (it holds the weights' bytes): the
    /// holder of this object may live on (VGG-16's plan lives to the end of the command), they must not. No reads afterwards.
    /// </summary>
    public void Release()
    {
        Volatile.Write(ref _rows, null);
        Interlocked.Exchange(ref _gram, null)?.Release();
    }

    /// <summary>Whether <paramref name="source"/> reads, bit for bit, the rows this Gram was built from (all of them, on all cores).</summary>
    public bool SameRows(IRowSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var rows = Volatile.Read(ref _rows) ?? throw new InvalidOperationException("the kept Gram was released");
        int same = 1;
        // Two row buffers per worker, not per row (4,096 rows of 32 KB each otherwise).
        Parallel.For(0, Rows, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) },
            () => (Mine: new double[Cols], Theirs: new double[Cols]),
            (j, loop, buffers) =>
            {
                rows.ReadRow(j, buffers.Mine);
                source.Read(j, 0, buffers.Theirs);
                if (!System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffers.Mine.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffers.Theirs.AsSpan())))
                {
                    Volatile.Write(ref same, 0);
                    loop.Stop();
                }
                return buffers;
            },
            _ => { });
        return same == 1;
    }
}
