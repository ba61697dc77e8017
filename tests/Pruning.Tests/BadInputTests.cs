using OnnxSlim.GraphIO;
using OnnxSlim.GraphIO.Proto;
using OnnxSlim.TestSupport;

namespace OnnxSlim.Pruning.Tests;

/// <summary>Issue 12: models and plan files the library refuses up front, with what is wrong and where.</summary>
public sealed class BadInputTests
{
    private static GraphBuilder ConvNet()
    {
        var b = new GraphBuilder(seed: 5);
        string x = b.Input("x", 1, 3, 8, 8);
        string h = b.Relu(b.BatchNorm(b.Conv(x, 3, 8), 8));
        h = b.Relu(b.Conv(h, 8, 8));
        b.Output(h, 1, 8, 8, 8);
        return b;
    }

    private static PruningException Refused(GraphBuilder b, string expected)
    {
        using var model = b.Model();
        var e = Assert.Throws<PruningException>(() => Pruner.Prune(model, new PruneOptions { Validate = false, Time = false }));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "+Inf")]
    [InlineData(float.NegativeInfinity, "-Inf")]
    public void Non_finite_weights_are_refused_naming_the_layer_and_the_tensor(float value, string shown)
    {
        var b = ConvNet();
        var conv = b.Graph.Node.Where(n => n.OpType == "Conv").Last();
        var w = b.Graph.Initializer.First(t => t.Name == conv.Input[1]);
        var values = new Tensor(w).ToFloats();
        values[17] = value;
        w.RawData = Tensor.FromFloats(w.Name, [.. w.Dims], values).Proto.RawData;
        Refused(b, $"Conv '{conv.Name}' weight '{w.Name}' holds {shown} (element 17 of {values.Length})");
    }

    [Fact]
    public void Non_finite_batchnorm_parameters_are_refused()
    {
        var b = ConvNet();
        var bn = b.Graph.Node.First(n => n.OpType == "BatchNormalization");
        var variance = b.Graph.Initializer.First(t => t.Name == bn.Input[4]);
        variance.RawData = Tensor.FromFloats(variance.Name, [8], Enumerable.Repeat(float.NaN, 8).ToArray()).Proto.RawData;
        Refused(b, $"BatchNormalization '{bn.Name}' variance");
    }

    /// <summary>
    /// A layer whose weight is computed from an initializer in a way that is not folded (a random op here; a Transpose
    /// and deterministic ops are folded first, see ComputedWeightFoldingTests) is no layer to the channel rules; the
    /// refusal says so and how to export instead (ConvNeXt named a LayerNorm only).
    /// </summary>
    [Fact]
    public void A_refusal_names_layers_whose_weight_is_computed_from_stored_tensors()
    {
        var b = new GraphBuilder(seed: 3);
        string x = b.Input("x", 1, 8);
        string w = b.Node("RandomUniformLike", [b.Init("w", [8, 4])]);
        b.Output(b.Node("MatMul", [x, w]), 1, 4);
        var e = Refused(b, "1 Conv/Gemm/MatMul node(s) read a weight computed from stored tensors");
        Assert.Contains("through RandomUniformLike", e.Message);
        Assert.Contains("do_constant_folding=True", e.Message);

        var plain = new GraphBuilder();
        string y = plain.Input("x", 1, 8);
        plain.Output(plain.Relu(y), 1, 8);
        Assert.DoesNotContain("computed from stored tensors", Assert.Throws<PruningException>(() =>
        {
            using var model = plain.Model();
            Pruner.Prune(model, new PruneOptions { Validate = false, Time = false });
        }).Message);
    }

    [Fact]
    public void Graphs_that_nothing_could_run_are_refused_whatever_the_options()
    {
        var b = ConvNet();
        b.Graph.Output.Clear();
        Refused(b, "no outputs");

        b = ConvNet();
        b.Graph.Node.Last().Input[0] = "ghost_value";
        Refused(b, "reads 'ghost_value', which no node, initializer or graph input defines");

        b = ConvNet();
        var relu = b.Graph.Node.First(n => n.OpType == "Relu");
        b.Graph.Node.Add(new NodeProto { OpType = "Relu", Name = "twin", Input = { relu.Input[0] }, Output = { relu.Output[0] } });
        Refused(b, $"value '{relu.Output[0]}' is defined twice");

        b = ConvNet();
        var first = b.Graph.Node.First(n => n.OpType == "Conv");
        first.Input[0] = b.Graph.Node.Last().Output[0];
        Refused(b, "cycle");

        b = ConvNet();
        b.Graph.Input.Add(b.Graph.Input[0].Clone());
        Refused(b, "graph input 'x' is listed twice");

        b = ConvNet();
        b.Graph.Output.Add(new ValueInfoProto { Name = "ghost_output" });
        Refused(b, "graph output 'ghost_output'");
    }

    [Theory]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": null}""", "$.groups must be an array, got null")]
    [InlineData("""{"format": "onnxslim-plan/1"}""", "has no \"groups\"")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": {}}""", "$.groups must be an array, got an object")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [null]}""", "$.groups[0] must be a group object, got null")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": ["a"], "channels": 4, "keep": null}]}""", "$.groups[0].keep must be an array, got null")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": ["a"], "channels": null, "keep": [0]}]}""", "$.groups[0].channels must be a number, got null")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": ["a"], "channels": 4, "keep": [0, 2147483648]}]}""", "$.groups[0].keep[1] must be a channel index")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": ["a"], "channels": 4, "keep": [0, 1.5]}]}""", "$.groups[0].keep[1] must be a channel index")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": ["a"], "channels": 4, "keep": [0, "1"]}]}""", "got \"1\"")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": [null], "channels": 4, "keep": [0]}]}""", "$.groups[0].producers[0] must be a node name")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": ["a"], "channels": 4, "keep": [0], "frozen": "no"}]}""", "$.groups[0].frozen must be true or false")]
    [InlineData("""{"format": "onnxslim-plan/1", "groups": [""", "not valid JSON (line 1")]
    [InlineData("""[1, 2]""", "not in format onnxslim-plan/1")]
    public void Plan_files_with_nulls_and_wrong_types_are_refused_with_the_json_path(string json, string expected)
    {
        var e = Assert.Throws<PruningException>(() => PlanFile.Parse(json, "plan.json"));
        Assert.Contains("plan file 'plan.json'", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Plan_files_with_comments_and_trailing_commas_are_read()
    {
        var plan = PlanFile.Parse("""
            // written by hand
            {"format": "onnxslim-plan/1", "groups": [{"id": 0, "producers": ["a"], "channels": 4, "keep": [0, 2], "frozen": false, "reason": null},],}
            """, "plan.json");
        Assert.Equal([0, 2], Assert.Single(plan.Groups).Keep);
    }
}
