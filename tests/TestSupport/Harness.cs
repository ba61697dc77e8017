using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;
using OnnxSlim.Runtime;

namespace OnnxSlim.TestSupport;

/// <summary>Running models in ONNX Runtime and picking channels, for the rewriter tests.</summary>
public static class Harness
{
    /// <summary>Finds groups with the shapes a real run gives for the values the analysis can use.</summary>
    public static ChannelGroupSet Analyze(OnnxModel model, bool probeShapes = true)
    {
        var names = ChannelGroups.ShapeQueries(model.Graph);
        var shapes = probeShapes && names.Count > 0 ? ShapeProbe.Run(model, names, []) : null;
        return ChannelGroups.Find(model, shapes);
    }

    public static IReadOnlyList<NamedTensor> Run(byte[] model, int seed = 7)
    {
        using var runner = new ModelRunner(model, Provider.Cpu, intraOpThreads: 1);
        var shapes = InputShapes.Resolve(runner.Inputs, []);
        return runner.Run(InputGenerator.Generate(runner.Inputs, shapes, seed));
    }

    /// <summary>Every output matches in shape, and max |a − b| ≤ tolerance × max |a| (error relative to the output's scale).</summary>
    public static void AssertSameOutputs(IReadOnlyList<NamedTensor> expected, IReadOnlyList<NamedTensor> actual, double relTolerance)
    {
        Assert.Equal(expected.Count, actual.Count);
        Assert.True(OutputComparison.Compare(expected, actual).AllFinite, "outputs are not finite");
        for (int k = 0; k < expected.Count; k++)
        {
            Assert.Equal(expected[k].Shape, actual[k].Shape);
            double error = RelativeError(expected[k].AsFloats(), actual[k].AsFloats());
            Assert.True(error <= relTolerance, $"output '{expected[k].Name}': error {error:G3} of its scale > {relTolerance:G3}");
        }
    }

    public static double RelativeError(float[] a, float[] b)
    {
        double scale = 0, error = 0;
        for (int i = 0; i < a.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(a[i]));
            error = Math.Max(error, Math.Abs(a[i] - b[i]));
        }
        return error / Math.Max(scale, 1e-30);
    }

    /// <summary>
    /// Per prunable group, a random sorted subset of about <paramref name="fraction"/> of its channels (at least one, at
    /// least one removed); in a group tied into conv groups, the same count from each (see <see cref="ChannelGroup.Blocks"/>).
    /// </summary>
    public static Dictionary<int, int[]> RandomKeep(ChannelGroupSet groups, double fraction, Random random)
    {
        var keep = new Dictionary<int, int[]>();
        foreach (var g in groups.Prunable)
        {
            if (g.Blocks > 1)
            {
                if (g.BlockWidth < 2) continue;
                int perBlock = Math.Clamp((int)Math.Round(g.BlockWidth * fraction), 1, g.BlockWidth - 1);
                keep[g.Id] = [.. Enumerable.Range(0, g.Blocks).SelectMany(b =>
                    Enumerable.Range(b * g.BlockWidth, g.BlockWidth).OrderBy(_ => random.Next()).Take(perBlock)).Order()];
                continue;
            }
            if (g.Width < 2) continue;
            int count = Math.Clamp((int)Math.Round(g.Width * fraction), 1, g.Width - 1);
            keep[g.Id] = [.. Enumerable.Range(0, g.Width).OrderBy(_ => random.Next()).Take(count).Order()];
        }
        return keep;
    }

    public static byte[] Bytes(OnnxModel model) => model.ToBytes();
}
