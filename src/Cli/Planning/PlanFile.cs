using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnnxSlim.Cli.Planning;

/// <summary>
/// The plan file of NOTES.md §3 (`--plan-out` / `--plan-in`): per channel group, its producers and the
/// sorted original channel indices to keep, so the same selection can be replayed or applied elsewhere.
/// </summary>
public sealed class PlanFile
{
    public const string FormatName = "onnxslim-plan/1";

    [JsonPropertyName("format")] public string Format { get; init; } = FormatName;
    [JsonPropertyName("model")] public string Model { get; init; } = "";
    [JsonPropertyName("target")] public string Target { get; init; } = "macs";
    [JsonPropertyName("cr")] public double Cr { get; init; }
    [JsonPropertyName("groups")] public List<PlanGroup> Groups { get; init; } = [];

    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    public void Write(string path)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(this, Options));
        File.Move(tmp, path, overwrite: true);
    }

    public static PlanFile Read(string path)
    {
        if (!File.Exists(path)) throw new CliError($"plan file not found: {path}");
        PlanFile? plan;
        try { plan = JsonSerializer.Deserialize<PlanFile>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new CliError($"plan file '{path}' is not valid JSON: {e.Message.Split('\n')[0]}"); }
        if (plan is null || plan.Format != FormatName)
            throw new CliError($"plan file '{path}' is not in format {FormatName}");
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
