using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;

namespace OnnxSlim.Fuzz;

/// <summary>Side files: --plan-in JSON mutations, and .npy mutations for --calib (prune; some inside an .npz or a folder of .npy files) and --inputs (validate).</summary>
internal static class SideFilesFamily
{
    public static FuzzCase Make(Ctx c) => c.Rng.Chance(0.5) ? Plan(c) : Npy(c);

    // ---- plan files ----------------------------------------------------------------------------------------

    private static FuzzCase Plan(Ctx c)
    {
        var rng = c.Rng;
        // Chain nets (no residual, no depthwise): each conv is its own channel group, named by its node.
        var spec = NetSpec.Random(rng) with { Residual = false, Depthwise = false, Storage = WeightStorage.Initializer };
        var m = ModelFactory.Build(spec, rng);
        var groups = new JsonArray();
        int id = 0;
        foreach (var (node, _, width) in m.Convs)
        {
            int k = Math.Max(1, width / 2);
            var keep = Enumerable.Range(0, width).OrderBy(_ => rng.NextU64()).Take(k).Order().Select(i => (JsonNode?)JsonValue.Create(i)).ToArray();
            groups.Add(new JsonObject
            {
                ["id"] = id++, ["producers"] = new JsonArray(JsonValue.Create(node)), ["channels"] = width,
                ["keep"] = new JsonArray(keep), ["frozen"] = false, ["reason"] = null,
            });
        }
        var plan = new JsonObject { ["format"] = "onnxslim-plan/1", ["model"] = "model.onnx", ["target"] = "macs", ["cr"] = 0.5, ["groups"] = groups };
        var (text, what) = MutatePlan(rng, plan, m);
        var files = Ctx.ModelFiles(m);
        files.Add(CaseFile.Input("plan.json", Encoding.UTF8.GetBytes(text)));
        var args = new List<string> { "model.onnx", "-o", "out.onnx", "--plan-in", "plan.json", "--no-bench" };
        double x = rng.NextDouble();
        if (x < 0.08) { args.AddRange(["--plan-out", "plan.json"]); what += "; --plan-out is the --plan-in file"; }
        else if (x < 0.2) { args.AddRange(["--plan-out", "p2.json"]); what += "; --plan-out p2.json"; }
        else if (x < 0.25) { args.AddRange(["--criterion", "refit"]); what += "; --criterion refit"; }
        return c.Case($"{m.Describe}: plan-in: {what}", args, files);
    }

    private static (string Text, string What) MutatePlan(Rng rng, JsonObject plan, BuiltModel m)
    {
        var groups = (JsonArray)plan["groups"]!;
        JsonObject? G() => groups.Count > 0 ? (JsonObject)groups[rng.Next(groups.Count)]! : null;
        string Json() => plan.ToJsonString();
        int width = m.Convs.Count > 0 ? m.Convs[0].Channels : 4;
        switch (rng.Next(36))
        {
            case 0: return (Json(), "valid plan");
            case 1: plan["groups"] = null; return (Json(), "groups null");
            case 2: plan.Remove("groups"); return (Json(), "groups missing");
            case 3: plan["groups"] = new JsonObject(); return (Json(), "groups is an object");
            case 4: plan["groups"] = "x"; return (Json(), "groups is a string");
            case 5: groups.Add(null); return (Json(), "a null group entry");
            case 6: if (G() is { } g6) g6["keep"] = null; return (Json(), "a group's keep null");
            case 7: G()?.Remove("keep"); return (Json(), "a group's keep missing");
            case 8: if (G() is { } g8) g8["keep"] = new JsonArray(); return (Json(), "keep []");
            case 9: if (G() is { } g9) g9["keep"] = new JsonArray(0, 0, 1); return (Json(), "duplicate keep indices");
            case 10:
            {
                var g = G();
                int ch = g?["channels"]?.GetValue<int>() ?? width;
                long v = rng.Pick<long>(ch, -1, int.MaxValue);
                if (g is not null) g["keep"] = new JsonArray(0, v);
                return (Json(), $"keep index {v} out of range");
            }
            case 11:
            {
                string v = rng.Pick("2147483648", "1e20", "99999999999999999999", "1.5", "\"1\"", "true", "{}");
                if (G() is { } g) g["keep"] = JsonNode.Parse($"[0, {v}]");
                return (Json(), $"keep [0, {v}]");
            }
            case 12: if (G() is { } g12) g12["keep"] = new JsonArray([.. Enumerable.Range(0, g12["channels"]!.GetValue<int>()).Select(i => (JsonNode?)i)]); return (Json(), "keep all channels");
            case 13: if (G() is { } g13) g13["keep"] = new JsonArray(0); return (Json(), "keep one channel");
            case 14: if (G() is { } g14) g14["producers"] = null; return (Json(), "producers null");
            case 15: if (G() is { } g15) g15["producers"] = new JsonArray(); return (Json(), "producers []");
            case 16: if (G() is { } g16) g16["producers"] = new JsonArray("nosuch"); return (Json(), "producers names no node");
            case 17: if (G() is { } g17) g17["producers"] = new JsonArray(null, null); return (Json(), "producers [null, null]");
            case 18: if (G() is { } g18) g18["channels"] = g18["channels"]!.GetValue<int>() + 1; return (Json(), "channels off by one");
            case 19: if (G() is { } g19) g19["channels"] = null; return (Json(), "channels null");
            case 20: if (G() is { } g20) g20["id"] = JsonNode.Parse(rng.Pick("null", "1e20", "\"a\"", "-1")); return (Json(), "odd group id");
            case 21:
            {
                string v = rng.Pick("null", "\"onnxslim-plan/2\"", "1", "\"\"");
                plan["format"] = JsonNode.Parse(v);
                return (Json(), $"format {v}");
            }
            case 22: plan.Remove("format"); return (Json(), "format missing");
            case 23: return (rng.Pick("null", "[]", "", "{", "{}", "\"plan\"", "0"), "not a plan object");
            case 24: return ("\uFEFF" + Json(), "UTF-8 BOM");
            case 25: return (Json()[..^1] + ",}", "trailing comma");
            case 26: return ("// a comment\n" + Json(), "a // comment");
            case 27: return (new string('[', 5000) + new string(']', 5000), "5000 nested arrays");
            case 28: plan["cr"] = JsonNode.Parse(rng.Pick("\"abc\"", "null", "1e400")); return (Json(), "odd cr");
            case 29: if (groups.Count > 0) groups.Add(groups[0]!.DeepClone()); return (Json(), "a group listed twice");
            case 30:
                groups.Add(new JsonObject { ["id"] = 99, ["producers"] = new JsonArray("fc", "head"), ["channels"] = 3, ["keep"] = new JsonArray(0) });
                groups.Add(new JsonObject { ["id"] = 98, ["producers"] = new JsonArray("fc"), ["channels"] = m.Proto.Graph.Output.Count > 0 ? 5 : 1, ["keep"] = new JsonArray(0) });
                return (Json(), "groups that prune the head (frozen, or no such group)");
            case 31: plan["extra"] = new JsonObject { ["x"] = 1 }; if (G() is { } g31) g31["extra"] = "y"; return (Json(), "unknown fields (valid)");
            case 32: return (Json().Replace("\"cr\":0.5", "\"cr\":NaN"), "cr NaN literal (not JSON)");
            case 33: if (G() is { } g33) g33["keep"] = new JsonObject { ["0"] = 1 }; return (Json(), "keep is an object");
            case 34: return (Json()[..(Json().Length / 2)], "truncated JSON");
            default: if (G() is { } g35) g35["frozen"] = JsonNode.Parse(rng.Pick("\"yes\"", "null", "1")); return (Json(), "odd frozen value");
        }
    }

    // ---- .npy files ----------------------------------------------------------------------------------------

    private static FuzzCase Npy(Ctx c)
    {
        var rng = c.Rng;
        var spec = NetSpec.Random(rng) with { DynamicBatch = rng.Chance(0.8) };
        var m = c.Base(0.3, c.Demo is not null && rng.Chance(0.3) ? null : spec);
        long n = rng.Pick(4, 8, 16);
        long[] shape = [n, m.InputShape[1], m.InputShape[2], m.InputShape[3]];
        var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++) values[i] = rng.Normal();
        var (bytes, what) = MutateNpy(rng, shape, values);
        var files = Ctx.ModelFiles(m);
        bool validate = rng.Chance(0.35);
        bool npz = !validate && rng.Chance(0.35);
        if (npz)
        {
            (bytes, string archive) = NpzBytes(rng, m.InputName, bytes);
            what = $"{what}, in an .npz: {archive}";
        }
        string data = npz ? "data.npz" : "data.npy";
        files.Add(CaseFile.Input(data, bytes));
        List<string> args = validate
            ? ["validate", "model.onnx", "model.onnx", "--inputs", data]
            : ["model.onnx", "-o", "out.onnx", "--calib", data, "--no-bench"];
        if (!validate && rng.Chance(0.2)) args.AddRange(["--criterion", rng.Pick("gem", "l1")]);
        // Drawn last, so the cases before folders were added keep every other choice.
        if (!validate && !npz && rng.Chance(0.3))
        {
            files.RemoveAt(files.Count - 1);
            var first = MemoryMarshal.AsBytes(values.AsSpan(0, (int)(values.Length / n)));
            files.Add(CaseFile.Input("calib/0.npy", NpyBytes(Header("<f4", Tuple([1, .. shape[1..]])), first)));
            files.Add(CaseFile.Input("calib/1.npy", bytes));
            args[args.IndexOf(data)] = "calib";
            what += ", as calib/1.npy in a folder after a valid one-sample calib/0.npy";
        }
        return c.Case($"{m.Describe}: {(validate ? "validate --inputs" : "--calib")}: {what}", args, files);
    }

    /// <summary>The .npy as the member for <paramref name="input"/> of a zip archive, the archive sometimes damaged.</summary>
    private static (byte[] Bytes, string What) NpzBytes(Rng rng, string input, byte[] npy)
    {
        byte[] Zip(string member, CompressionLevel level, byte[]? second = null)
        {
            var ms = new MemoryStream();
            using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            {
                using (var s = zip.CreateEntry(member, level).Open()) s.Write(npy);
                if (second is not null) using (var s = zip.CreateEntry("other.npy", level).Open()) s.Write(second);
            }
            return ms.ToArray();
        }
        switch (rng.Next(8))
        {
            case 0: return (Zip(input + ".npy", CompressionLevel.NoCompression), "stored");
            case 1: return (Zip(input + ".npy", CompressionLevel.Optimal), "deflated");
            case 2: return (Zip("images.npy", CompressionLevel.Optimal), "member named for no input");
            case 3: return (Zip(input + ".npy", CompressionLevel.Optimal, npy[..(npy.Length / 2)]), "plus a truncated second member");
            case 4: { var b = Zip(input + ".npy", CompressionLevel.Optimal); return (b[..(b.Length / 2)], "archive truncated to half"); }
            case 5:
            {
                var b = Zip(input + ".npy", CompressionLevel.NoCompression);
                b[Math.Min(b.Length - 1, 30 + input.Length + 4 + 128 + rng.Next(64))] ^= 1; // a byte of the member's values
                return (b, "stored, one value's byte changed (CRC-32 mismatch)");
            }
            case 6:
            {
                var b = Zip(input + ".npy", CompressionLevel.Optimal);
                for (int i = 0; i < 16; i++) b[rng.Next(b.Length)] ^= (byte)(1 + rng.Next(255));
                return (b, "deflated, 16 random bytes changed");
            }
            default: return (Zip(input + ".NPY", CompressionLevel.Optimal), "member suffix .NPY");
        }
    }

    public static byte[] NpyBytes(string header, ReadOnlySpan<byte> data, int major = 1, bool pad = true)
    {
        int prefix = major == 1 ? 10 : 12;
        if (pad)
        {
            int total = prefix + header.Length + 1;
            header += new string(' ', (64 - total % 64) % 64);
        }
        header += "\n";
        var ms = new MemoryStream();
        ms.Write([0x93, .. "NUMPY"u8, (byte)major, 0]);
        if (major == 1) ms.Write(BitConverter.GetBytes((ushort)header.Length));
        else ms.Write(BitConverter.GetBytes((uint)header.Length));
        ms.Write(Encoding.Latin1.GetBytes(header));
        ms.Write(data);
        return ms.ToArray();
    }

    private static string Header(string descr, string shape, string fortran = "False") =>
        $"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}";

    private static string Tuple(long[] s) => s.Length == 1 ? $"({s[0]},)" : "(" + string.Join(", ", s) + ")";

    private static (byte[] Bytes, string What) MutateNpy(Rng rng, long[] shape, float[] values)
    {
        ReadOnlySpan<byte> data = MemoryMarshal.AsBytes(values.AsSpan());
        string ok = Header("<f4", Tuple(shape));
        long n = shape[0];
        long per = values.Length / n;
        switch (rng.Next(30))
        {
            case 0: return (NpyBytes(ok, data), $"valid float32 {Tuple(shape)}");
            case 1: { var b = NpyBytes(ok, data); b[1] = (byte)'X'; return (b, "bad magic"); }
            case 2: return (NpyBytes(ok, data, major: 9), "format version 9");
            case 3:
            {
                var b = NpyBytes(ok, data);
                b[8] = 0xFF; b[9] = 0xFF;
                return (b[..200], "header length 65535 in a 200-byte file");
            }
            case 4: { var b = NpyBytes(ok, data); b[8] = 0; b[9] = 0; return (b, "header length 0"); }
            case 5: return (NpyBytes($"{{'fortran_order': False, 'shape': {Tuple(shape)}, }}", data), "no descr");
            case 6:
            {
                string s = rng.Pick("(1000000000000, 1, 28, 28)", $"(9999999999999999999999, {shape[1]})", $"({n}, {shape[1]}, 100000, 100000)",
                    $"(2147483648, {shape[1]}, {shape[2]}, {shape[3]})", $"({n * 1000}, {shape[1]}, {shape[2]}, {shape[3]})");
                return (NpyBytes(Header("<f4", s), data), $"header shape {s} (huge)");
            }
            case 7: { string s = rng.Pick("(a, b)", "(1.5, 2)", "(n, 1, 28, 28)", "(None,)", "(,)"); return (NpyBytes(Header("<f4", s), data), $"header shape {s} (not numbers)"); }
            case 8: { string s = "[" + string.Join(", ", shape) + "]"; return (NpyBytes(Header("<f4", s), data), $"header shape {s} (a list)"); }
            case 9: return (NpyBytes(Header("<f4", "()"), data[..4]), "scalar shape ()");
            case 10: return (NpyBytes(Header("<f4", Tuple([0, .. shape[1..]])), []), "zero samples");
            case 11: return (NpyBytes(Header("<f4", Tuple([-n, .. shape[1..]])), data), "negative sample count");
            case 12: { string d = rng.Pick("<i2", "|u1", ">f4", "<f2", "<c8", "|b1", "<U4", "O"); return (NpyBytes(Header(d, Tuple(shape)), data), $"dtype {d}"); }
            case 13:
            {
                var longs = values.Select(v => (long)(v * 10)).ToArray();
                return (NpyBytes(Header("<i8", Tuple(shape)), MemoryMarshal.AsBytes(longs.AsSpan())), "dtype <i8 (integers)");
            }
            case 14:
            {
                var doubles = values.Select(v => (double)v).ToArray();
                return (NpyBytes(Header("<f8", Tuple(shape)), MemoryMarshal.AsBytes(doubles.AsSpan())), "dtype <f8 (valid)");
            }
            case 15: return (NpyBytes(Header("<f4", Tuple([n, per])), data), $"rank 2 {Tuple([n, per])}");
            case 16: return (NpyBytes(Header("<f4", Tuple([.. shape, 1])), data), "rank 5");
            case 17: return (NpyBytes(Header("<f4", Tuple([n * shape[1] * shape[2], shape[3]])), data), "rank 2, rows are not samples");
            case 18:
            {
                long[] s2 = [n * 4, shape[1], shape[2] / 2, shape[3] / 2];
                return (NpyBytes(Header("<f4", Tuple(s2)), data), $"wrong spatial size {Tuple(s2)}");
            }
            case 19:
            {
                long c2 = shape[1] == 1 ? 3 : 1;
                var v2 = new float[n * c2 * shape[2] * shape[3]];
                return (NpyBytes(Header("<f4", Tuple([n, c2, shape[2], shape[3]])), MemoryMarshal.AsBytes(v2.AsSpan())), $"wrong channel count {c2}");
            }
            case 20:
            {
                var v = (float[])values.Clone();
                float bad = rng.Pick(float.NaN, float.PositiveInfinity, float.NegativeInfinity, 3e38f);
                if (rng.Chance(0.5)) Array.Fill(v, bad); else v[rng.Next(v.Length)] = bad;
                return (NpyBytes(ok, MemoryMarshal.AsBytes(v.AsSpan())), $"values {bad}");
            }
            case 21: return (NpyBytes(ok, data[..(data.Length / 2)]), "data truncated to half");
            case 22: return (NpyBytes(ok, data[..(data.Length - 1)]), "data one byte short");
            case 23: return (NpyBytes(ok, [.. data, .. new byte[100]]), "trailing bytes after the data");
            case 24: return (NpyBytes(Header("<f4", Tuple(shape), "True"), data), "fortran_order True");
            case 25: return (NpyBytes($"{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, 1", data), "header without closing parenthesis");
            case 26: return (NpyBytes(ok, data, major: 2), "format version 2 (valid)");
            case 27: return (NpyBytes(Header("<f4", Tuple([1, .. shape[1..]])), data[..(int)(per * 4)]), "one sample (valid)");
            case 28: return (NpyBytes(ok.Replace("'shape'", "'shape' ").Replace(": (", ":("), data, pad: false), "unpadded header, odd spacing");
            default: return (rng.Bytes(rng.Pick(0, 5, 300)), "random bytes");
        }
    }
}
