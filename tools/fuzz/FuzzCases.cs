using System.Text;
using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Fuzz;

/// <summary>
/// The case generator. Case i of seed s is drawn from its own generator (<see cref="Rng.ForCase"/>), so
/// <c>Generate(s, n)</c> is deterministic, its first k cases are <c>Generate(s, k)</c>, and one case can be
/// regenerated alone with <see cref="One"/>.
/// </summary>
public static class FuzzCases
{
    public const string Bytes = "bytes", Structure = "structure", Args = "args", SideFiles = "sidefiles";
    public static readonly string[] Families = [Bytes, Structure, Args, SideFiles];

    public static List<FuzzCase> Generate(int seed, int count, string? family = null, string? repoRoot = null)
    {
        var demo = DemoModel(repoRoot);
        return [.. Enumerable.Range(0, count).Select(i => One(seed, i, family, demo))];
    }

    public static FuzzCase One(int seed, int index, string? family = null, byte[]? demo = null)
    {
        if (family is not null && !Families.Contains(family)) throw new ArgumentException($"unknown family '{family}' (expected {string.Join(", ", Families)})");
        var rng = Rng.ForCase(seed, index);
        string f = rng.Weighted((15, Bytes), (35, Structure), (35, Args), (15, SideFiles));
        if (family is not null) f = family;
        var ctx = new Ctx(rng, seed, index, f, demo);
        return f switch
        {
            Bytes => BytesFamily.Make(ctx),
            Structure => StructureFamily.Make(ctx),
            Args => ArgsFamily.Make(ctx),
            _ => SideFilesFamily.Make(ctx),
        };
    }

    /// <summary>fixtures/demo_cnn.onnx, found by walking up from the working folder and from this tool's folder; null when absent.</summary>
    public static byte[]? DemoModel(string? repoRoot = null)
    {
        foreach (var start in new[] { repoRoot, Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = start is null ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string path = Path.Combine(dir.FullName, "fixtures", "demo_cnn.onnx");
                if (File.Exists(path)) return File.ReadAllBytes(path);
            }
        }
        return null;
    }

    public static string? RepoRoot(string? hint = null)
    {
        foreach (var start in new[] { hint, Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = start is null ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "fixtures", "demo_cnn.onnx")) && Directory.Exists(Path.Combine(dir.FullName, "src", "Cli")))
                    return dir.FullName;
        return null;
    }
}

/// <summary>What every family needs while building one case.</summary>
internal sealed class Ctx(Rng rng, int seed, int index, string family, byte[]? demo)
{
    public Rng Rng { get; } = rng;
    public int Seed { get; } = seed;
    public int Index { get; } = index;
    public string Family { get; } = family;
    public byte[]? Demo { get; } = demo;

    /// <summary>A valid base model: the repo's demo (when found) or a generated net.</summary>
    public BuiltModel Base(double demoChance = 0.2, NetSpec? spec = null)
    {
        if (spec is null && Demo is not null && Rng.Chance(demoChance)) return FromProto(ModelProto.Parser.ParseFrom(Demo), "demo_cnn", "input", [1, 1, 28, 28]);
        spec ??= NetSpec.Random(Rng);
        return ModelFactory.Build(spec, Rng);
    }

    internal static BuiltModel FromProto(ModelProto proto, string describe, string input, long[] shape)
    {
        var b = new BuiltModel { Proto = proto, InputName = input, InputShape = shape, Describe = describe };
        foreach (var n in proto.Graph.Node.Where(n => n.OpType == "Conv" && n.Input.Count > 1))
        {
            var w = proto.Graph.Initializer.FirstOrDefault(t => t.Name == n.Input[1]);
            if (w is not null && w.Dims.Count == 4) b.Convs.Add((n.Name, w.Name, (int)w.Dims[0]));
        }
        return b;
    }

    public FuzzCase Case(string description, List<string> args, List<CaseFile> files, string? mustRefuse = null) => new()
    {
        Index = Index, Seed = Seed, Family = Family, Description = description, Args = args, Files = files, MustRefuse = mustRefuse,
    };

    /// <summary>The model's files as inputs: MODEL plus its external-data side files.</summary>
    public static List<CaseFile> ModelFiles(BuiltModel m, string name = "model.onnx") =>
        [CaseFile.Input(name, m.Bytes), .. m.SideFiles.Select(kv => CaseFile.Input(kv.Key, kv.Value))];

    /// <summary>A plain command for the model: mostly prune (no timing, to keep cases fast), sometimes the other commands.</summary>
    public List<string> Command(string model, double pruneShare = 0.7)
    {
        double x = Rng.NextDouble();
        if (x < pruneShare)
        {
            var a = new List<string> { model, "-o", "out.onnx", "--no-bench" };
            if (Rng.Chance(0.3)) a.AddRange(["--cr", Rng.Pick("0.2", "0.5", "0.8", "0.95")]);
            if (Rng.Chance(0.25)) a.Add("--no-validate");
            if (Rng.Chance(0.1)) a.AddRange(["--compensation", Rng.Pick("none", "exact")]);
            return a;
        }
        x = (x - pruneShare) / (1 - pruneShare);
        if (x < 0.4) return Rng.Chance(0.5) ? ["inspect", model, "--groups", "--json"] : ["inspect", model];
        if (x < 0.75) return Rng.Chance(0.5) ? ["analyze", model, "--json"] : ["analyze", model, "--plot", "plot.svg"];
        if (x < 0.9) return ["bench", model, "--runs", "2", "--warmup", "0"];
        return ["validate", model, model];
    }
}

/// <summary>Byte-level corruption of a valid model: truncation, bit flips, length-prefix inflation, garbage.</summary>
internal static class BytesFamily
{
    public static FuzzCase Make(Ctx c)
    {
        var rng = c.Rng;
        var m = c.Base(0.25);
        byte[] good = m.Bytes;
        byte[] bad;
        string what;
        string? mustRefuse = null;
        switch (rng.Next(11))
        {
            case 0:
                int keep = rng.Range(1, good.Length);
                bad = good[..keep];
                what = $"truncated to {keep} of {good.Length} bytes";
                break;
            case 1:
                int cut = rng.Range(1, 9);
                bad = good[..^cut];
                what = $"last {cut} bytes cut";
                break;
            case 2:
            case 3:
                bad = (byte[])good.Clone();
                int flips = rng.Pick(1, 2, 4, 16, 64);
                for (int i = 0; i < flips; i++) bad[rng.Next(bad.Length)] ^= (byte)(1 << rng.Next(8));
                what = $"{flips} random bit flips";
                break;
            case 4:
            {
                ulong len = rng.Pick(1UL << 62, 1UL << 31, (1UL << 32) + 5, (ulong)good.Length + 1, (1UL << 63) - 1, ulong.MaxValue);
                bad = [0x3A, .. Varint(len), .. good];
                what = $"graph field with length prefix {len} before a valid file";
                mustRefuse = "a length prefix longer than the file is not a protobuf message";
                break;
            }
            case 5:
            {
                // The graph field's own length, inflated past the end of the file.
                int at = FindTopLevelField(good, 7);
                if (at < 0) goto case 4;
                int lenStart = at + 1;
                ulong oldLen = ReadVarint(good, lenStart, out int lenBytes);
                ulong len = rng.Pick(oldLen + 1, oldLen + 1000, 1UL << 62, 1UL << 33);
                bad = [.. good[..lenStart], .. Varint(len), .. good[(lenStart + lenBytes)..]];
                what = $"graph length prefix {oldLen} -> {len}";
                mustRefuse = "a length prefix longer than the file is not a protobuf message";
                break;
            }
            case 6:
                bad = rng.Bytes(rng.Pick(1, 7, 100, 4096));
                what = $"{bad.Length} random bytes";
                mustRefuse = "random bytes are not an ONNX model";
                break;
            case 7:
                bad = rng.Pick<byte[]>([], "not an onnx model\n"u8.ToArray(), [0], [0x08], Encoding.UTF8.GetBytes("{\"graph\": {}}"));
                what = bad.Length == 0 ? "empty file" : $"tiny non-model file ({bad.Length} B)";
                mustRefuse = "not an ONNX model";
                break;
            case 8:
            {
                bad = (byte[])good.Clone();
                int pos = rng.Next(bad.Length), n = Math.Min(rng.Pick(4, 64, 512), bad.Length - pos);
                byte v = rng.Pick<byte>(0x00, 0xFF);
                Array.Fill(bad, v, pos, n);
                what = $"{n} bytes at {pos} set to 0x{v:X2}";
                break;
            }
            case 9:
            {
                int pos = rng.Next(good.Length);
                byte[] ins = rng.Bytes(rng.Pick(1, 3, 16));
                bad = [.. good[..pos], .. ins, .. good[pos..]];
                what = $"{ins.Length} random bytes inserted at {pos}";
                break;
            }
            default:
                bool concat = rng.Chance(0.5);
                bad = concat ? [.. good, .. good] : [.. good, .. rng.Bytes(rng.Pick(1, 5, 100))];
                what = concat ? "file concatenated with itself (protobuf merge)" : "trailing garbage after a valid file";
                break;
        }
        var files = new List<CaseFile> { CaseFile.Input("model.onnx", bad) };
        files.AddRange(m.SideFiles.Select(kv => CaseFile.Input(kv.Key, kv.Value)));
        return c.Case($"{m.Describe}: {what}", c.Command("model.onnx", 0.5), files, mustRefuse);
    }

    public static byte[] Varint(ulong v)
    {
        var bytes = new List<byte>();
        do
        {
            byte b = (byte)(v & 0x7F);
            v >>= 7;
            if (v != 0) b |= 0x80;
            bytes.Add(b);
        } while (v != 0);
        return [.. bytes];
    }

    private static ulong ReadVarint(byte[] b, int at, out int length)
    {
        ulong v = 0;
        int shift = 0;
        length = 0;
        while (at + length < b.Length)
        {
            byte x = b[at + length++];
            v |= (ulong)(x & 0x7F) << shift;
            if ((x & 0x80) == 0) break;
            shift += 7;
        }
        return v;
    }

    /// <summary>Offset of the tag byte of a top-level length-delimited field, or -1.</summary>
    private static int FindTopLevelField(byte[] b, int field)
    {
        int i = 0;
        while (i < b.Length)
        {
            int tagAt = i;
            ulong tag = ReadVarint(b, i, out int n);
            i += n;
            int wire = (int)(tag & 7);
            if ((int)(tag >> 3) == field && wire == 2) return tagAt;
            switch (wire)
            {
                case 0: ReadVarint(b, i, out n); i += n; break;
                case 1: i += 8; break;
                case 5: i += 4; break;
                case 2: ulong len = ReadVarint(b, i, out n); i += n + (int)len; break;
                default: return -1;
            }
        }
        return -1;
    }
}
