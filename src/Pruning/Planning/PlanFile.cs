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

    /// <summary>Reads a plan; <paramref name="source"/> names it in messages. Comments and trailing commas are allowed.</summary>
    /// <exception cref="PruningException">Not JSON, not this format, or a field of the wrong type (named by its JSON path).</exception>
    public static PlanFile Parse(string json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new PruningException($"plan file '{source}' is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})");
        }
        using (doc)
        {
            var reader = new PlanReader(source);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.String || format.GetString() != FormatName)
                throw new PruningException($"plan file '{source}' is not in format {FormatName} (a JSON object with \"format\": \"{FormatName}\")");
            var groups = reader.Required(root, "groups", "$", JsonValueKind.Array);
            var list = new List<PlanGroup>();
            int k = 0;
            foreach (var g in groups.EnumerateArray())
            {
                string at = $"$.groups[{k++}]";
                if (g.ValueKind != JsonValueKind.Object) throw reader.Error(at, "a group object", g);
                list.Add(new PlanGroup
                {
                    Id = reader.Int(reader.Required(g, "id", at, JsonValueKind.Number), $"{at}.id", min: int.MinValue),
                    Producers = [.. reader.Required(g, "producers", at, JsonValueKind.Array).EnumerateArray().Select((p, i) =>
                        p.ValueKind == JsonValueKind.String ? p.GetString()! : throw reader.Error($"{at}.producers[{i}]", "a node name (a string)", p))],
                    Channels = reader.Int(reader.Required(g, "channels", at, JsonValueKind.Number), $"{at}.channels", min: 1),
                    Keep = [.. reader.Required(g, "keep", at, JsonValueKind.Array).EnumerateArray().Select((c, i) => reader.Int(c, $"{at}.keep[{i}]", min: 0))],
                    Frozen = g.TryGetProperty("frozen", out var f) && f.ValueKind switch
                    {
                        JsonValueKind.True => true,
                        JsonValueKind.False or JsonValueKind.Null => false,
                        _ => throw reader.Error($"{at}.frozen", "true or false", f),
                    },
                    Reason = g.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null,
                });
            }
            return new PlanFile
            {
                Model = root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "",
                Target = root.TryGetProperty("target", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "macs",
                Cr = root.TryGetProperty("cr", out var cr) && cr.ValueKind == JsonValueKind.Number && cr.TryGetDouble(out double c) ? c : 0,
                Groups = list,
            };
        }
    }

    /// <summary>Typed reads of a plan's fields, each failure naming the file, the JSON path, what was expected and what was found.</summary>
    private sealed class PlanReader(string source)
    {
        public JsonElement Required(JsonElement parent, string name, string at, JsonValueKind kind)
        {
            if (!parent.TryGetProperty(name, out var value)) throw new PruningException($"plan file '{source}': {at} has no \"{name}\"");
            if (value.ValueKind != kind) throw Error($"{at}.{name}", kind == JsonValueKind.Array ? "an array" : "a number", value);
            return value;
        }

        public int Int(JsonElement value, string at, int min) =>
            value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int v) && v >= min
                ? v
                : throw Error(at, min == 0 ? "a channel index (an integer ≥ 0)" : min == 1 ? "a channel count (an integer ≥ 1)" : "an integer", value);

        public PruningException Error(string at, string expected, JsonElement found)
        {
            string text = found.ValueKind switch
            {
                JsonValueKind.Object => "an object",
                JsonValueKind.Array => "an array",
                JsonValueKind.Null => "null",
                _ => found.GetRawText() is { Length: <= 40 } raw ? raw : found.GetRawText()[..40] + "…",
            };
            return new PruningException($"plan file '{source}': {at} must be {expected}, got {text}");
        }
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
