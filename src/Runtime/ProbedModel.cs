using Microsoft.ML.OnnxRuntime;
using OnnxSlim.GraphIO;

namespace OnnxSlim.Runtime;

/// <summary>
/// A model just run by its shape probe (<see cref="ShapeProbe.Run"/>), for a caller that wants the model's own outputs
/// right after: on the probe's very inputs they are the probe run's, copied out of it; on other inputs a plain session
/// runs them (made on first use). Why: a detector's run is seconds, and validation's reference usually feeds the
/// probe's inputs (seeded random inputs at the model's fixed shape).
/// </summary>
public sealed class ProbedModel : IDisposable
{
    private readonly OnnxModel _model;
    private readonly IReadOnlyList<NamedTensor> _probeOutputs;
    private ModelRunner? _plain;
    private ModelRunner? _part;
    private IReadOnlyList<string>? _partNames;

    internal ProbedModel(OnnxModel model, IReadOnlyDictionary<string, NodeMetadata> inputs, IReadOnlyList<string> outputNames,
        IReadOnlyList<NamedTensor> probeInputs, IReadOnlyList<NamedTensor> probeOutputs, int valuesInferred, int valuesRun)
    {
        _model = model;
        ValuesInferred = valuesInferred;
        ValuesRun = valuesRun;
        Inputs = inputs;
        OutputNames = outputNames;
        ProbeInputs = probeInputs;
        _probeOutputs = probeOutputs;
    }

    /// <summary>Of the values probed, how many ONNX Runtime inferred and how many were read from the probe's run (<see cref="ShapeProbe"/>).</summary>
    public int ValuesInferred { get; }
    public int ValuesRun { get; }

    /// <summary>The model's own inputs (as a session lists them).</summary>
    public IReadOnlyDictionary<string, NodeMetadata> Inputs { get; }

    /// <summary>The model's own outputs.</summary>
    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>What the probe fed the model.</summary>
    public IReadOnlyList<NamedTensor> ProbeInputs { get; }

    /// <summary>Whether <paramref name="inputs"/> are the probe's, value for value.</summary>
    public bool AreProbeInputs(IReadOnlyList<NamedTensor> inputs) =>
        inputs.Count == ProbeInputs.Count && inputs.Zip(ProbeInputs).All(p => p.First.SameAs(p.Second));

    /// <summary>Every own output on <paramref name="inputs"/>; see <see cref="ModelRunner.RunInBatches"/> for <paramref name="batch"/>.</summary>
    /// <param name="probeRun">Whether they are the probe run's: the probe's inputs, which a plain session would also run in one run.</param>
    public IReadOnlyList<NamedTensor> RunInBatches(IReadOnlyList<NamedTensor> inputs, int batch, out bool probeRun)
    {
        probeRun = AreProbeInputs(inputs) && ModelRunner.RunsWhole(Inputs, inputs, batch);
        if (probeRun) return [.. _probeOutputs.Take(OutputNames.Count)];
        _plain ??= new ModelRunner(_model);
        return _plain.RunInBatches(inputs, batch, OutputNames);
    }

    /// <summary>
    /// The values <paramref name="names"/> (computed by the model's nodes) on <paramref name="inputs"/>: the probe run's copies
    /// on the probe's inputs when it copied them (<see cref="ShapeProbe.Run"/>'s alsoCopied), else a run of only the nodes that
    /// compute them (a detector's backbone without its heads).
    /// </summary>
    public IReadOnlyList<NamedTensor> RunValues(IReadOnlyList<NamedTensor> inputs, int batch, IReadOnlyList<string> names, out bool probeRun)
    {
        probeRun = AreProbeInputs(inputs) && ModelRunner.RunsWhole(Inputs, inputs, batch) && names.All(n => _probeOutputs.Any(o => o.Name == n));
        if (probeRun) return [.. names.Select(n => _probeOutputs.First(o => o.Name == n))];
        if (_part is null || !_partNames!.SequenceEqual(names))
        {
            _part?.Dispose();
            _part = ModelRunner.ForValues(_model, names);
            _partNames = names;
        }
        return _part.RunInBatches(inputs, batch, names);
    }

    public void Dispose()
    {
        _plain?.Dispose();
        _part?.Dispose();
    }
}
