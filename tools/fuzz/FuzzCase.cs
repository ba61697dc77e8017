using System.Text;

namespace OnnxSlim.Fuzz;

/// <summary>What a file of a case is to the run: an input the CLI must never change, or a file that merely
/// exists beforehand (an output target, a folder, a link that is itself an output path).</summary>
public enum FileRole { Input, Existing }

/// <summary>One entry laid in a case's folder before the run: a file, a folder, or a symbolic link.</summary>
public sealed record CaseFile(string Path, byte[]? Content, FileRole Role, string? LinkTarget = null, bool IsDirectory = false)
{
    public static CaseFile Input(string path, byte[] content) => new(path, content, FileRole.Input);
    public static CaseFile Existing(string path, byte[] content) => new(path, content, FileRole.Existing);
    public static CaseFile Folder(string path) => new(path, null, FileRole.Existing, IsDirectory: true);
    /// <summary>A symbolic link; an input link when the CLI reads through it, an existing one when it is an output path.</summary>
    public static CaseFile Link(string path, string target, FileRole role = FileRole.Input) => new(path, null, role, LinkTarget: target);
}

/// <summary>One generated case: a command line run in a fresh folder holding <see cref="Files"/>.</summary>
public sealed class FuzzCase
{
    public required int Index { get; init; }
    public required int Seed { get; init; }
    public required string Family { get; init; }
    /// <summary>Short words saying what was mutated, e.g. "nan-weights: conv1 all +Inf".</summary>
    public required string Description { get; init; }
    /// <summary>The CLI's arguments (after `onnxslim`), paths relative to the case folder.</summary>
    public required IReadOnlyList<string> Args { get; init; }
    public IReadOnlyList<CaseFile> Files { get; init; } = [];
    /// <summary>Set where the input is certainly invalid (an enum given as a number, bytes that are not a
    /// protobuf message): exit 0 then is a failure (accepted-invalid).</summary>
    public string? MustRefuse { get; init; }

    public string Id => $"{Seed}:{Index}";

    public string CommandLine => "onnxslim " + string.Join(" ", Args.Select(Quote));

    /// <summary>The case's folder contents in one line, for reproducers.</summary>
    public string FilesLine => string.Join(", ", Files.Select(f =>
        f.IsDirectory ? f.Path + "/" : f.LinkTarget is not null ? $"{f.Path} -> {f.LinkTarget}" : $"{f.Path} ({f.Content!.Length} B)"));

    public static string Quote(string a) =>
        a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=,:*+@%".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";

    public override string ToString() => $"#{Index} [{Family}] {Description} :: {CommandLine}";
}

/// <summary>What a command line asks for, read the way the CLI reads it: which command, its positional
/// arguments, and which files a successful run must leave (models, reports, plans, plots).</summary>
public sealed class CommandShape
{
    public static readonly string[] Subcommands = ["inspect", "analyze", "bench", "validate"];
    private static readonly HashSet<string> Flags = ["--no-validate", "--no-bench", "--force", "--verbose", "-v", "--json", "--groups"];
    private static readonly HashSet<string> InfoFlags = ["--help", "-h", "-?", "/?", "/h", "--version"];

    public string Command { get; private init; } = "prune";
    public List<string> Positionals { get; } = [];
    public Dictionary<string, List<string?>> Options { get; } = new(StringComparer.Ordinal);
    public bool Info { get; private init; }

    public bool Has(string name) => Options.ContainsKey(name);

    /// <summary>A flag that is on: given bare, or last given as `--flag=true` (`--json=false` turns it off).</summary>
    public bool FlagOn(string name) => Options.TryGetValue(name, out var v) && v.Count > 0 && (v[^1] is null || (bool.TryParse(v[^1], out bool on) && on));
    public string? Last(string name) => Options.TryGetValue(name, out var v) && v.Count > 0 ? v[^1] : null;

    /// <summary>The model whose validity decides how strictly a successful run's outputs are checked.</summary>
    public string? PrimaryModel => Positionals.Count > 0 ? Positionals[0] : null;

    public static CommandShape Parse(IReadOnlyList<string> args)
    {
        int start = 0;
        string command = "prune";
        if (args.Count > 0 && Subcommands.Contains(args[0])) { command = args[0]; start = 1; }
        var shape = new CommandShape { Command = command, Info = args.Any(InfoFlags.Contains) };
        for (int i = start; i < args.Count; i++)
        {
            string a = args[i];
            if (a.StartsWith('-') && a.Length > 1)
            {
                string name = a; string? value = null;
                int eq = a.IndexOfAny(['=', ':']);
                if (a.StartsWith("--") && eq > 2) { name = a[..eq]; value = a[(eq + 1)..]; }
                if (name == "--output") name = "-o";
                if (!shape.Options.TryGetValue(name, out var list)) shape.Options[name] = list = [];
                if (value is null && !Flags.Contains(name) && !InfoFlags.Contains(name) && i + 1 < args.Count) value = args[++i];
                list.Add(value);
                continue;
            }
            shape.Positionals.Add(a);
        }
        return shape;
    }

    /// <summary>Files a run that exits 0 must have written, with what each must hold.</summary>
    public List<(string Path, OutputKind Kind)> ExpectedOutputs()
    {
        var outputs = new List<(string, OutputKind)>();
        if (Info) return outputs;
        if (Command == "prune")
        {
            string? model = PrimaryModel;
            string? o = Last("-o") ?? (model is null ? "demo.slim.onnx" : System.IO.Path.ChangeExtension(model, null) + ".slim.onnx");
            outputs.Add((o, OutputKind.Model));
            if (Last("--plan-out") is { } plan) outputs.Add((plan, OutputKind.Plan));
            if (Last("--report") is { } report)
                outputs.Add((report, report.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OutputKind.JsonReport : OutputKind.HtmlReport));
        }
        else if (Command == "analyze" && Last("--plot") is { } plot)
            outputs.Add((plot, plot.EndsWith(".svg", StringComparison.OrdinalIgnoreCase) ? OutputKind.Svg : OutputKind.HtmlReport));
        return outputs;
    }
}

public enum OutputKind { Model, Plan, JsonReport, HtmlReport, Svg }

internal static class Text
{
    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
