using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnnxSlim.Pruning;

/// <summary>
/// The plan file of NOTES.md §3 (`--plan-out` / `--plan-in`): per channel group, its producers and the
/// sorted original channel indices to keep, so the same selection can be replayed or applied elsewhere.
/// </summary>
public sealed class PlanFile
{
    public const string FormatName = "onnxslim-plan/1";

    [JsonPropertyName("format")] public string Format { get; init; } = FormatName;
    [JsonPropertyName("model")] public string Model { get; set; } = "";
    [JsonPropertyName("target")] public string Target { get; init; } = "macs";
    [JsonPropertyName("cr")] public double Cr { get; init; }
    [JsonPropertyName("groups")] public List<PlanGroup> Groups { get; init; } = [];

    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    /// <summary>Reads a plan; <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="PruningException">Not JSON, or not this format.</exception>
    public static PlanFile Parse(string json, string source)
    {
        PlanFile? plan;
        try { plan = JsonSerializer.Deserialize<PlanFile>(json); }
        catch (JsonException e) { throw new PruningException($"plan file '{source}' is not valid JSON: {e.Message.Split('\n')[0]}"); }
        if (plan is null || plan.Format != FormatName)
            throw new PruningException($"plan file '{source}' is not in format {FormatName}");
        return plan;
    }
}

public sealed class PlanGroup
{
    [JsonPropertyName("id")] public int Id { get; init; }
    [JsonPropertyName("producers")] public List<string> Producers { get; init; } = [];
    [JsonPropertyName("channels")] public int Channels { get; init; }
    [JsonPropertyName("keep")] public List<int> Keep { get; init; } = [];
    [JsonPropertyName("frozen")] public bool Frozen { get; init; }
    [JsonPropertyName("reason")] public string? Reason { get; init; }
}
