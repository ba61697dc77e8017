using OnnxSlim.GraphIO;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Pruning.Tests;

public sealed class OnCopyTests
{
    /// <summary>The agreement before reconstruction is measured beside the fits, which write weights in place: it must see the sliced ones.</summary>
    [Fact]
    public void Work_on_a_copy_sees_the_model_as_it_was_when_started_whatever_the_caller_edits_next()
    {
        var b = new GraphBuilder(seed: 3);
        string x = b.Input("x", 1, 3, 8, 8);
        b.Output(b.Conv(x, 3, 4), 1, 4, 8, 8);
        using var model = b.Model();
        var weight = model.Graph.Initializers.Values.First(t => t.Dims.Length == 4);
        var before = weight.ToFloats();
        using var started = new ManualResetEventSlim();
        using var edited = new ManualResetEventSlim();
        var seen = OnCopy.Run(model, copy =>
        {
            started.Set();
            edited.Wait();
            return copy.Graph.Initializers.Values.First(t => t.Dims.Length == 4).ToFloats();
        });
        started.Wait();
        weight.SetFloats(weight.Dims, new float[before.Length]);
        edited.Set();
        Assert.Equal(before, seen.GetAwaiter().GetResult());
        Assert.All(weight.ToFloats(), v => Assert.Equal(0f, v));
    }
}
