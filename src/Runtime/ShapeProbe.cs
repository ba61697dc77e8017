using OnnxSlim.GraphIO;

namespace OnnxSlim.Runtime;

/// <summary>
/// Concrete shapes of intermediate values at a given input shape. ONNX Runtime's shape inference gives most of them when
/// it loads the model with those input dims (<see cref="InferredShapes"/>); the rest (what static inference can't: shape
/// subgraphs, data-dependent resizes in detection models) are read from one run with them exposed as extra outputs,
/// which also checks the inference against the model's own outputs.
/// </summary>
public static class ShapeProbe
{
    /// <summary>Shapes of the requested values, of the graph outputs, and of the inputs as they were fed.</summary>
    /// <param name="thenRun">Runs once the probe's session has closed, with the model's own outputs on the probe's inputs
    /// (copied out of the probe's run) and a plain session for other inputs (e.g. the validation's reference outputs).
    /// Not the probe's session for other inputs: every value is an output there, so ONNX Runtime keeps all of them alive
    /// to the end of a run (a detector at 640² held ~2.3 GB for a batch of 4).</param>
    /// <param name="alsoCopied">Values (among <paramref name="values"/>) copied out of the probe's run besides the model's own
    /// outputs, for <see cref="ProbedModel.RunValues"/>; only with <paramref name="thenRun"/>.</param>
    public static Dictionary<string, long[]> Run(OnnxModel model, IEnumerable<string> values, IEnumerable<string> shapeOverrides, int seed = 0,
        Action<ProbedModel>? thenRun = null, IReadOnlyList<string>? alsoCopied = null)
    {
        var ownOutputs = model.Graph.OutputNames.ToList();
        var copied = ownOutputs.Concat(alsoCopied ?? []).Distinct(StringComparer.Ordinal).ToList();
        var wanted = values.Concat(alsoCopied ?? []).Where(v => model.Graph.Producer(v) is not null).Distinct(StringComparer.Ordinal).ToList();
        Dictionary<string, long[]> shapes;
        ProbedModel probed;
        ModelRunner? runner = null;
        try
        {
            runner = new ModelRunner(model, extraOutputs: alsoCopied);
            var inputShapes = InputShapes.Resolve(runner.Inputs, shapeOverrides);
            var inputs = InputGenerator.Generate(runner.Inputs, inputShapes, seed);
            IReadOnlyList<NamedTensor> own = [];
            Dictionary<string, long[]> RunExposing(IReadOnlyList<string> exposed)
            {
                if (exposed.Except(copied, StringComparer.Ordinal).Any())
                {
                    runner!.Dispose();
                    runner = null;
                    runner = new ModelRunner(model, extraOutputs: exposed.Concat(alsoCopied ?? []));
                }
                // Shapes only, besides the model's own outputs when asked for: copying every intermediate out (the whole
                // model's activations) cost that detector ~0.6 GB more.
                own = runner!.RunWithShapes(inputs, thenRun is null ? [] : copied, out var ran);
                return ran;
            }
            shapes = InferredShapes.Complete(model, wanted, [.. ownOutputs.Where(o => model.Graph.Producer(o) is not null)], inputShapes, RunExposing,
                types: null, out int inferredCount);
            foreach (var (name, shape) in inputShapes) shapes.TryAdd(name, shape);
            probed = new ProbedModel(model, runner.Inputs, ownOutputs, inputs, own, inferredCount, wanted.Count - inferredCount);
        }
        finally
        {
            runner?.Dispose();
        }
        if (thenRun is not null)
        {
            using (probed) thenRun(probed);
        }
        return shapes;
    }
}

/// <summary>Runs a model with chosen intermediate values added as outputs and returns them.</summary>
public static class ActivationProbe
{
    public static Dictionary<string, NamedTensor> Run(OnnxModel model, IEnumerable<string> values, IEnumerable<string> shapeOverrides, int seed = 0)
    {
        using var runner = new ModelRunner(WithExtraOutputs(model, values), optimize: false);
        var shapes = InputShapes.Resolve(runner.Inputs, shapeOverrides);
        var inputs = InputGenerator.Generate(runner.Inputs, shapes, seed);
        return Run(runner, inputs);
    }

    public static Dictionary<string, NamedTensor> Run(ModelRunner runner, IReadOnlyList<NamedTensor> inputs) =>
        runner.Run(inputs).ToDictionary(t => t.Name, StringComparer.Ordinal);

    /// <summary>The model's bytes with the given values (those that exist and are not outputs yet) appended as graph outputs.</summary>
    public static byte[] WithExtraOutputs(OnnxModel model, IEnumerable<string> values) => model.ToBytesWithOutputs(values);
}
