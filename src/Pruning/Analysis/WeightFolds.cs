using OnnxSlim.GraphIO;
using OnnxSlim.Rewriter;

namespace OnnxSlim.Pruning;

/// <summary>
/// What the weight folds did to a model before its analysis: layer weights a Transpose computes from a stored tensor
/// (<see cref="StoredTransposes"/>: exact, no session), then other float tensors computed from stored ones alone
/// (<see cref="ComputedWeightFolding"/>), are made stored, so the channel rules see the layers reading them.
/// </summary>
internal sealed record WeightFolds(int Transposes, int Computed, string? Example)
{
    /// <summary>Applies both folds to <paramref name="model"/> in place.</summary>
    public static WeightFolds Apply(OnnxModel model)
    {
        int transposes = StoredTransposes.Fold(model.Graph);
        var (computed, example) = ComputedWeightFolding.Fold(model);
        return new WeightFolds(transposes, computed, example);
    }

    /// <summary>The summary's notes on what was folded, the Transposes first.</summary>
    public IEnumerable<string> Notes()
    {
        if (Transposes > 0)
            yield return $"{Transposes} Transpose node(s) of stored weights folded into the weights their layers read (an export without constant folding)";
        if (Computed > 0)
            yield return $"{Computed} tensor(s) computed from stored weights alone (e.g. read by '{Example}') computed once on ONNX Runtime and stored "
                + "(an export without constant folding)";
    }
}
