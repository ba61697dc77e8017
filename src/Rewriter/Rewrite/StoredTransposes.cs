using OnnxSlim.GraphIO;

namespace OnnxSlim.Rewriter;

/// <summary>
/// Folds a Transpose of a stored tensor that a layer reads as its weight into a stored, transposed tensor. PyTorch
/// exports a channels-last Linear (ConvNeXt's) as MatMul(x, Transpose(W)) when constant folding is off; the channel
/// rules only prune layers whose weight is stored, so such a model had no prunable group at all. A permutation is
/// exact, so the folded graph computes the same values.
/// </summary>
public static class StoredTransposes
{
    /// <summary>Folds every such Transpose in place (float32, float16 and bfloat16 tensors) and returns how many.</summary>
    public static int Fold(Graph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        int folded = 0;
        for (int sweep = 0; sweep < 4; sweep++)
        {
            var transposes = graph.Nodes.Where(n => Layers.IsLayer(n) && n.Inputs.Count > 1)
                .Select(n => FoldableTranspose(graph, n.Input(1))).OfType<Node>().Distinct().ToList();
            if (transposes.Count == 0) break;
            foreach (var t in transposes) graph.AddInitializer(Transposed(graph.ResolveWeight(t.Input(0))!.Tensor, t));
            foreach (var t in transposes) graph.RemoveNode(t);
            graph.Reindex();
            folded += transposes.Count;
        }
        if (folded > 0) graph.RemoveUnusedInitializers();
        return folded;
    }

    /// <summary>The Transpose behind <paramref name="weight"/> (through Identity and float Casts) whose input is stored, else null.</summary>
    private static Node? FoldableTranspose(Graph graph, string weight)
    {
        string current = weight;
        for (int hop = 0; hop < 16; hop++)
        {
            if (graph.Producer(current) is not { IsStandard: true } producer) return null;
            if (producer.OpType is "Identity" || producer.OpType is "Cast" && DataType.IsFloating((int)producer.GetInt("to", 0)))
            {
                current = producer.Input(0);
                continue;
            }
            if (producer.OpType != "Transpose" || producer.Inputs.Count != 1 || producer.Outputs.Count != 1
                || graph.IsGraphOutput(producer.Outputs[0])) return null;
            if (graph.ResolveWeight(producer.Input(0)) is not { Tensor: var t })
            {
                // A Transpose of a Transpose: the inner one goes first, this one on the next sweep.
                current = producer.Input(0);
                continue;
            }
            return t.DataType is DataType.Float or DataType.Float16 or DataType.BFloat16
                && (producer.GetInts("perm") is not { } perm || IsPermutation(perm, t.Rank)) ? producer : null;
        }
        return null;
    }

    private static bool IsPermutation(long[] perm, int rank) =>
        perm.Length == rank && perm.Order().Select((p, i) => p == i).All(x => x);

    /// <summary>The stored tensor permuted as the node does, named after its output, in the stored element type.</summary>
    private static Tensor Transposed(Tensor source, Node transpose)
    {
        long[] dims = source.Dims;
        int rank = dims.Length;
        long[] perm = transpose.GetInts("perm") ?? [.. Enumerable.Range(0, rank).Reverse().Select(i => (long)i)];
        long[] outDims = [.. perm.Select(p => dims[p])];
        var strides = new long[rank];
        long stride = 1;
        for (int d = rank - 1; d >= 0; d--) { strides[d] = stride; stride *= dims[d]; }
        float[] values = source.ToFloats();
        var result = new float[values.Length];
        var index = new long[rank];
        for (int o = 0; o < result.Length; o++)
        {
            long offset = 0;
            for (int d = 0; d < rank; d++) offset += index[d] * strides[perm[d]];
            result[o] = values[offset];
            for (int d = rank - 1; d >= 0 && ++index[d] == outDims[d]; d--) index[d] = 0;
        }
        return Tensor.FromFloats(transpose.Outputs[0], outDims, result, source.DataType);
    }
}
