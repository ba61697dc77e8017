using System.Globalization;

namespace OnnxSlim.Bench;

/// <summary>`--name value` and `--flag` arguments of a benchmark, read invariantly.</summary>
public sealed class BenchArgs(string[] args)
{
    static BenchArgs() => CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;

    public string? Option(string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public bool Flag(string name) => args.Contains(name);

    public string[] List(string name, string fallback) => (Option(name) ?? fallback).Split(',', StringSplitOptions.RemoveEmptyEntries);

    public double[] Doubles(string name, string fallback) => [.. List(name, fallback).Select(v => double.Parse(v, CultureInfo.InvariantCulture))];

    public int Int(string name, int fallback) => Option(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double Double(string name, double fallback) => Option(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
