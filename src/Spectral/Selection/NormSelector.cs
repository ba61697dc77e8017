using System.Numerics.Tensors;

namespace OnnxSlim.Spectral;

public enum FilterNorm { L1, L2 }

/// <summary>Baseline: keep the filters with the largest L1 or L2 norm (ties: lower index first).</summary>
public sealed class NormSelector(FilterNorm norm) : IFilterSelector
{
    public FilterNorm Norm { get; } = norm;

    public int[] Select(FilterMatrix m, int keep)
    {
        SelectorArgs.CheckRowsOnly(m, keep);
        var score = new double[m.Rows];
        for (int j = 0; j < m.Rows; j++)
            score[j] = Norm == FilterNorm.L1 ? TensorPrimitives.SumOfMagnitudes(m.Row(j)) : TensorPrimitives.Norm(m.Row(j));
        return SelectorArgs.Ascending(Enumerable.Range(0, m.Rows).OrderByDescending(j => score[j]).ThenBy(j => j).Take(keep));
    }
}
