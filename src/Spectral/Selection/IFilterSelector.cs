namespace OnnxSlim.Spectral;

/// <summary>Chooses which filters (rows) of a group to keep.</summary>
public interface IFilterSelector
{
    /// <summary>The kept original row indices, sorted ascending, exactly <paramref name="keep"/> of them (1 ≤ keep ≤ Rows).</summary>
    int[] Select(FilterMatrix m, int keep);
}
