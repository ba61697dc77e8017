using System.Text.Json;
using System.Text.Json.Serialization;
using OnnxSlim.Runtime;

namespace OnnxSlim.Pruning;

/// <summary>
/// What the latency target measured on ONNX Runtime for one model, provider, thread count and input shape: the
/// whole model's kernels timed in place, the width step the provider's kernels prefer, and layers timed alone at a
/// few widths. Raw timings only (no channel groups), so a cached copy serves any later plan of the same model.
/// </summary>
public sealed class LatencyMeasurements
{
    public const string CurrentFormat = "onnxslim-latency/2";

    [JsonPropertyName("format")] public string Format { get; set; } = CurrentFormat;
    [JsonPropertyName("key")] public string Key { get; set; } = "";
    [JsonPropertyName("threads")] public int Threads { get; set; }

    /// <summary>Median whole-model run (profiler on), ms.</summary>
    [JsonPropertyName("run_ms")] public double RunMilliseconds { get; set; }

    /// <summary>A run's time outside its kernels (the least over the runs).</summary>
    [JsonPropertyName("outside_kernels_ms")] public double OutsideKernelsMilliseconds { get; set; }
    [JsonPropertyName("kernels")] public List<KernelTime> Kernels { get; set; } = [];

    /// <summary>Channel counts are cheapest in multiples of this (1: no preference found).</summary>
    [JsonPropertyName("step")] public int Step { get; set; } = 1;
    [JsonPropertyName("step_probe")] public LayerTimings? StepProbe { get; set; }

    /// <summary>Layers timed alone, by node id.</summary>
    [JsonPropertyName("layers")] public Dictionary<string, LayerTimings> Layers { get; set; } = [];

    /// <summary>Linear layers left to the proportional model because the time budget ran out (or they were too large to time alone).</summary>
    [JsonPropertyName("not_timed")] public int NotTimed { get; set; }
    [JsonPropertyName("seconds")] public double Seconds { get; set; }

    public string ToJson() => JsonSerializer.Serialize(this);

    public static LatencyMeasurements? FromJson(string json)
    {
        try
        {
            var m = JsonSerializer.Deserialize<LatencyMeasurements>(json);
            return m is { Format: CurrentFormat } ? m : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// One layer timed alone (ms, median of its kernels): along its output channels with the input whole, and along its
/// input channels with the output whole. Widths count elements along each axis; the last width is the whole layer.
/// </summary>
public sealed class LayerTimings
{
    [JsonPropertyName("out_widths")] public double[] OutWidths { get; set; } = [];
    [JsonPropertyName("out_ms")] public double[] OutMilliseconds { get; set; } = [];
    [JsonPropertyName("in_widths")] public double[] InWidths { get; set; } = [];
    [JsonPropertyName("in_ms")] public double[] InMilliseconds { get; set; } = [];
}
