using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;
using OnnxSlim.Runtime.Recovery;
using OnnxSlim.Spectral;

namespace OnnxSlim.Cli.Pipeline;

/// <summary>
/// With calibration data, each group's channels ranked by what their removal costs the layers reading
/// them once those are re-fitted (<see cref="ChannelElimination"/>), from the channel moments measured on
/// the unpruned model. Groups none of whose readers can be measured get no ranking.
/// </summary>
public static class CalibratedRanking
{
    public static Dictionary<int, ChannelElimination> Measure(ModelAnalysis analysis, IEnumerable<ChannelGroup> groups,
        IReadOnlyList<NamedTensor> calibration, int seed)
    {
        var readers = groups.ToDictionary(g => g.Id, g => GroupReaders.Find(analysis.Groups, g, out _));
        var values = readers.Values.SelectMany(r => r.Select(x => x.Input)).Distinct().ToList();
        var result = new Dictionary<int, ChannelElimination>();
        if (values.Count == 0) return result;
        var moments = ChannelMoments.Compute(analysis.Model, values, calibration, seed: seed);
        var ranked = readers.Where(r => r.Value.Count > 0).AsParallel()
            .Select(r => (r.Key, ChannelElimination.Run([.. r.Value.Select(x => new ConsumerStatistics(Submatrix(moments[x.Input], x.Positions), x.Weights))])))
            .ToList();
        foreach (var (id, elimination) in ranked) result[id] = elimination;
        return result;
    }

    /// <summary>The moments of the group's channels (at <paramref name="positions"/> of the activation's channel axis), in group order.</summary>
    private static double[] Submatrix(double[] moments, int[] positions)
    {
        int c = (int)Math.Round(Math.Sqrt(moments.Length)), n = positions.Length;
        var sub = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) sub[i * n + j] = moments[(long)positions[i] * c + positions[j]];
        return sub;
    }
}
