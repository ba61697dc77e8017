namespace OnnxSlim.Spectral;

/// <summary>
/// The rows of a filter matrix, produced on demand: what a group's stacked, scaled weight slices are before anyone
/// stores them. Reads must be repeatable (the same values every time) and safe from several threads at once.
/// </summary>
public interface IRowSource
{
    /// <summary>Writes columns [<paramref name="col"/>, <paramref name="col"/> + destination.Length) of row <paramref name="row"/>.</summary>
    void Read(int row, int col, Span<double> destination);
}
