using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// Converts between a layer's stored parameters and the regression's Θ: one n×m matrix per group, rows
/// = weights per output in the weight's own order (Conv: c, kh, kw; Gemm/MatMul: k), then the bias row,
/// so that output = features·Θ. Gemm's alpha and beta are folded in and out.
/// </summary>
internal static class LayerWeights
{
    /// <summary>Θ of the current (pruned, sliced) parameters: the fit's starting point, for the "before" error.</summary>
    public static double[][] Read(ConsumerUnit unit, LayerLayout layout, Graph graph)
    {
        float[] w = unit.Weight.Tensor.ToFloats();
        int groups = unit.Groups, mg = unit.OutputsPerGroup, weights = layout.FeaturesPerGroup - (layout.FitsBias ? 1 : 0);
        var node = unit.Nodes[0];
        double alpha = unit.Kind == ConsumerKind.Gemm ? node.GetFloat("alpha", 1) : 1;
        bool transB = unit.Kind == ConsumerKind.Gemm && Rewriter.Layers.Weight(node, unit.WeightDims)?.OutputAxis == 0;
        double[] bias = CurrentBias(unit, graph);
        var thetas = new double[groups][];
        for (int g = 0; g < groups; g++)
        {
            var theta = thetas[g] = new double[(long)layout.FeaturesPerGroup * mg];
            for (int t = 0; t < mg; t++)
            {
                int o = g * mg + t;
                for (int f = 0; f < weights; f++)
                    theta[f * mg + t] = unit.Kind switch
                    {
                        ConsumerKind.Conv => w[o * weights + f],
                        _ => alpha * w[transB ? o * weights + f : f * unit.Outputs + o],
                    };
                if (layout.FitsBias) theta[weights * mg + t] = bias[o];
            }
        }
        return thetas;
    }

    /// <summary>The bias each output currently adds (Gemm: β·C; a following Add counts as zero: the fit adds a delta to it).</summary>
    private static double[] CurrentBias(ConsumerUnit unit, Graph graph)
    {
        var bias = new double[unit.Outputs];
        var node = unit.Nodes[0];
        if (unit.Kind == ConsumerKind.MatMul || node.Input(2).Length == 0) return bias;
        int channels = unit.Outputs / unit.Block;
        double beta = unit.Kind == ConsumerKind.Gemm ? node.GetFloat("beta", 1) : 1;
        if (graph.ResolveWeight(node.Input(2)) is not { } c) return bias;
        float[] values = c.Tensor.ToFloats();
        if (values.Length != channels && values.Length != 1) throw new LayerSkippedException($"its bias has {values.Length} values for {channels} outputs");
        for (int o = 0; o < bias.Length; o++) bias[o] = beta * values[values.Length == 1 ? 0 : o / unit.Block];
        return bias;
    }

    /// <summary>
    /// A ConvTranspose channel's one bias from the k² (channel, tap) outputs' fitted ones: their mean, the least-squares
    /// choice for a shared bias when every tap has as many rows (each input pixel writes all of them).
    /// </summary>
    public static double[] SharedBias(ReadOnlySpan<double> perOutput, int block)
    {
        var shared = new double[perOutput.Length / block];
        for (int o = 0; o < shared.Length; o++)
        {
            double sum = 0;
            for (int t = 0; t < block; t++) sum += perOutput[o * block + t];
            shared[o] = sum / block;
        }
        return shared;
    }

    /// <summary>Stores Θ back into the pruned model: the weight tensor (in its own data type) and the bias slot.</summary>
    public static void Write(ConsumerUnit unit, LayerLayout layout, double[][] thetas, OnnxModel model)
    {
        int groups = unit.Groups, mg = unit.OutputsPerGroup, m = unit.Outputs, weights = layout.FeaturesPerGroup - (layout.FitsBias ? 1 : 0);
        var node = unit.Nodes[0];
        double alpha = unit.Kind == ConsumerKind.Gemm ? node.GetFloat("alpha", 1) : 1;
        if (alpha == 0) throw new LayerSkippedException("Gemm alpha is 0");
        bool transB = unit.Kind == ConsumerKind.Gemm && Rewriter.Layers.Weight(node, unit.WeightDims)?.OutputAxis == 0;
        var w = new float[unit.Weight.Tensor.ElementCount];
        var bias = new double[m];
        for (int g = 0; g < groups; g++)
            for (int t = 0; t < mg; t++)
            {
                int o = g * mg + t;
                var theta = thetas[g];
                for (int f = 0; f < weights; f++)
                {
                    double v = theta[f * mg + t];
                    if (unit.Kind == ConsumerKind.Conv) w[o * weights + f] = (float)v;
                    else w[transB ? o * weights + f : f * m + o] = (float)(v / alpha);
                }
                if (layout.FitsBias) bias[o] = theta[weights * mg + t];
            }
        unit.Weight.Tensor.SetFloats(unit.WeightDims, w);
        if (layout.FitsBias) WriteBias(unit, bias, model);
    }

    private static void WriteBias(ConsumerUnit unit, double[] bias, OnnxModel model)
    {
        if (unit.Block > 1) bias = SharedBias(bias, unit.Block);
        var slot = unit.Bias;
        var values = new float[bias.Length];
        if (slot.Kind == BiasKind.FollowingAdd)
        {
            var t = slot.Tensor!.Tensor;
            float[] current = t.ToFloats();
            for (int o = 0; o < values.Length; o++) values[o] = (float)(current[o] + bias[o]);
            t.SetFloats(t.Dims, values);
            return;
        }
        // Gemm adds β·C: divide β out, or make β 1 when it was 0 (C was ignored).
        foreach (var node in unit.Nodes)
            if (unit.Kind == ConsumerKind.Gemm && node.GetFloat("beta", 1) == 0) node.SetFloat("beta", 1);
        double beta = unit.Kind == ConsumerKind.Gemm ? unit.Nodes[0].GetFloat("beta", 1) : 1;
        for (int o = 0; o < values.Length; o++) values[o] = (float)(bias[o] / beta);
        if (slot.Kind == BiasKind.Existing)
        {
            var t = slot.Tensor!.Tensor;
            t.SetFloats(t.Dims, values);
            return;
        }
        var graph = model.Graph;
        string baseName = unit.Weight.Tensor.Name + "_reconstructed_bias", name = baseName;
        for (int i = 1; graph.Initializer(name) is not null || graph.Producer(name) is not null || graph.IsRuntimeInput(name); i++) name = $"{baseName}_{i}";
        var tensor = Tensor.FromFloats(name, [values.Length], values, slot.NewDataType);
        graph.AddInitializer(tensor);
        // Before IR 4 every initializer must also be declared as a graph input.
        if (model.IrVersion < 4) graph.AddInput(name, slot.NewDataType, [values.Length]);
        foreach (var node in unit.Nodes)
        {
            while (node.Inputs.Count < 3) node.Inputs.Add("");
            node.Inputs[2] = name;
        }
        graph.Reindex();
    }
}
