namespace OnnxSlim.Rewriter.Tests;

public sealed class DebugTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [InlineData("fp16_cast")]
    public void Dump(string name)
    {
        using var model = Patterns.Build(name).Model();
        var groups = Harness.Analyze(model);
        foreach (var g in groups)
        {
            output.WriteLine(g.ToString());
            foreach (var s in g.Sites) output.WriteLine("   " + s + "  " + s.Layout);
        }
        var keep = Harness.RandomKeep(groups, 0.6, new Random(name.Length));
        output.WriteLine("failed " + RedundancyInjector.MakeMultiples(groups, keep, new Random(5)));
    }
}
