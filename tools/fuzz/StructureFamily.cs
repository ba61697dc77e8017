using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxSlim.GraphIO.Proto;

namespace OnnxSlim.Fuzz;

/// <summary>Structural ONNX mutations of a valid net: bad weights, bad graphs, odd-but-valid storage and opsets.</summary>
internal static class StructureFamily
{
    private delegate string? Mutation(Rng rng, BuiltModel m);

    private static readonly (double Weight, string Name, Mutation Apply)[] Mutations =
    [
        (4, "valid", (_, _) => "no mutation (valid net)"),
        (6, "nonfinite-weights", NonFiniteWeights),
        (2, "bn-stats", BatchNormStats),
        (3, "weight-rank", WeightRank),
        (3, "weight-dims", WeightDims),
        (2, "data-size", DataSize),
        (2, "weight-dtype", WeightDtype),
        (2, "huge-dims", HugeDims),
        (3, "dangling-input", DanglingInput),
        (3, "duplicate-names", DuplicateNames),
        (4, "graph-outputs", GraphOutputs),
        (2, "empty-graph", EmptyGraph),
        (2, "cycle", Cycle),
        (3, "unknown-op", UnknownOp),
        (3, "ir3-initializers-as-inputs", Ir3),
        (2, "ir-opset", IrOpset),
        (5, "input-dims", InputDims),
        (6, "external-data", ExternalData),
        (3, "conv-attributes", ConvAttributes),
        (2, "node-order", NodeOrder),
        (2, "value-info", ValueInfoWrong),
        (2, "constant-cast", ConstantCast),
        (2, "float-data-field", FloatDataField),
    ];

    public static FuzzCase Make(Ctx c)
    {
        var rng = c.Rng;
        var (_, name, apply) = rng.Weighted([.. Mutations.Select(m => (m.Weight, m))]);
        NetSpec? spec = null;
        if (name == "external-data") spec = NetSpec.Random(rng) with { Storage = WeightStorage.External };
        bool demo = false;
        if (name == "ir3-initializers-as-inputs")
        {
            demo = rng.Chance(0.3);
            if (!demo) spec = NetSpec.Random(rng) with { Opset = rng.Pick(9, 9, 11, 13), Storage = WeightStorage.Initializer };
        }
        var m = c.Base(demo ? 1.0 : name is "nonfinite-weights" or "input-dims" or "valid" or "duplicate-names" ? 0.25 : 0.1, spec);
        string? what = Try(apply, rng, m);
        if (what is null) { what = "no applicable mutation (valid net)"; name = "valid"; }
        var parts = new List<string> { $"{name}: {what}" };
        // Now and then a second mutation on top.
        if (name != "valid" && rng.Chance(0.15))
        {
            var (_, name2, apply2) = rng.Weighted([.. Mutations.Where(x => x.Name is not ("valid" or "external-data")).Select(x => (x.Weight, x))]);
            if (Try(apply2, rng, m) is { } w2) parts.Add($"{name2}: {w2}");
        }
        return c.Case($"{m.Describe}: {string.Join(" + ", parts)}", c.Command("model.onnx"), Ctx.ModelFiles(m));
    }

    /// <summary>A mutation that does not fit the model (e.g. a second one on a graph the first emptied) is skipped.</summary>
    private static string? Try(Mutation apply, Rng rng, BuiltModel m)
    {
        try { return apply(rng, m); }
        catch (Exception e) when (e is ArgumentException or NullReferenceException or InvalidOperationException or KeyNotFoundException or IndexOutOfRangeException or FormatException) { return null; }
    }

    // ---- weights -------------------------------------------------------------------------------------------

    /// <summary>A conv weight's float values wherever the net keeps them (initializer, Constant, fp16, Identity, external).</summary>
    private sealed class WeightHandle(Func<float[]> get, Action<float[]> set, TensorProto proto)
    {
        public float[] Get() => get();
        public void Set(float[] v) => set(v);
        public TensorProto Proto => proto;
    }

    private static WeightHandle? Weight(BuiltModel m, string name)
    {
        var g = m.Proto.Graph;
        var init = g.Initializer.FirstOrDefault(t => t.Name == name) ?? g.Initializer.FirstOrDefault(t => t.Name == name + ".raw")
            ?? g.Initializer.FirstOrDefault(t => t.Name == name + ".fp16");
        var tensor = init ?? g.Node.Where(n => n.OpType == "Constant" && n.Output.Contains(name)).SelectMany(n => n.Attribute).FirstOrDefault(a => a.Name == "value")?.T;
        if (tensor is null) return null;
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            long off = long.Parse(tensor.ExternalData.First(e => e.Key == "offset").Value), len = long.Parse(tensor.ExternalData.First(e => e.Key == "length").Value);
            var file = m.SideFiles[ModelFactory.ExternalFile];
            return new WeightHandle(() => MemoryMarshal.Cast<byte, float>(file.AsSpan((int)off, (int)len)).ToArray(),
                v => MemoryMarshal.AsBytes(v.AsSpan()).CopyTo(file.AsSpan((int)off, (int)len)), tensor);
        }
        if (tensor.DataType == 10)
            return new WeightHandle(() => [.. MemoryMarshal.Cast<byte, Half>(tensor.RawData.Span).ToArray().Select(h => (float)h)],
                v => tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(v.Select(f => (Half)f).ToArray().AsSpan())), tensor);
        return new WeightHandle(() => ModelFactory.ReadFloats(tensor), v => ModelFactory.WriteFloats(tensor, v), tensor);
    }

    private static (string Node, string Weight, int Channels)? PickConv(Rng rng, BuiltModel m) => m.Convs.Count == 0 ? null : rng.Pick(m.Convs);

    private static string? NonFiniteWeights(Rng rng, BuiltModel m)
    {
        if (PickConv(rng, m) is not { } conv || Weight(m, conv.Weight) is not { } w) return null;
        var v = w.Get();
        var (label, value) = rng.Pick<(string, float)>(("NaN", float.NaN), ("+Inf", float.PositiveInfinity), ("-Inf", float.NegativeInfinity),
            ("3e38", 3e38f), ("-3.4e38", -3.4e38f), ("1e-45 (denormal)", 1e-45f), ("0", 0f));
        string scope = rng.Pick("all", "one", "one filter");
        if (scope == "all") Array.Fill(v, value);
        else if (scope == "one") v[rng.Next(v.Length)] = value;
        else { int per = v.Length / conv.Channels, f = rng.Next(conv.Channels); Array.Fill(v, value, f * per, per); }
        w.Set(v);
        return $"{conv.Weight} {scope} = {label}";
    }

    private static string? BatchNormStats(Rng rng, BuiltModel m)
    {
        var bn = m.Proto.Graph.Node.FirstOrDefault(n => n.OpType == "BatchNormalization");
        if (bn is null) return null;
        int which = rng.Pick(1, 4, 4);
        var t = m.Proto.Graph.Initializer.FirstOrDefault(x => x.Name == bn.Input[which]);
        if (t is null) return null;
        var v = ModelFactory.ReadFloats(t);
        float value = rng.Pick(-1f, float.NaN, 0f, float.PositiveInfinity);
        Array.Fill(v, value);
        ModelFactory.WriteFloats(t, v);
        return $"{bn.Name} {(which == 1 ? "scale" : "var")} = {value}";
    }

    private static string? WeightRank(Rng rng, BuiltModel m)
    {
        if (PickConv(rng, m) is not { } conv || Weight(m, conv.Weight) is not { } w) return null;
        var d = w.Proto.Dims.ToArray();
        long[] nd = rng.Next(4) switch
        {
            0 => [d[0], d[1] * d[2] * d[3]],
            1 => [d[0], d[1], d[2]],
            2 => [1, .. d],
            _ => [],
        };
        w.Proto.Dims.Clear();
        w.Proto.Dims.Add(nd);
        return $"{conv.Weight} dims [{string.Join(',', d)}] -> [{string.Join(',', nd)}]";
    }

    private static string? WeightDims(Rng rng, BuiltModel m)
    {
        if (PickConv(rng, m) is not { } conv || Weight(m, conv.Weight) is not { } w) return null;
        var d = w.Proto.Dims.ToArray();
        var nd = (long[])d.Clone();
        switch (rng.Next(5))
        {
            case 0: nd[0] = d[0] + 1; break;
            case 1: (nd[0], nd[1]) = (d[1], d[0]); break;
            case 2: nd[1] = d[1] + 1; break;
            case 3: nd[0] = 0; break;
            default: nd[rng.Next(4)] = -1; break;
        }
        w.Proto.Dims.Clear();
        w.Proto.Dims.Add(nd);
        return $"{conv.Weight} dims [{string.Join(',', d)}] -> [{string.Join(',', nd)}]";
    }

    private static string? DataSize(Rng rng, BuiltModel m)
    {
        var t = m.Proto.Graph.Initializer.Where(x => x.RawData.Length > 8 && x.DataLocation != TensorProto.Types.DataLocation.External).ToList();
        if (t.Count == 0) return null;
        var tensor = rng.Pick(t);
        var raw = tensor.RawData.ToByteArray();
        int n = rng.Pick(-4, -1, 4, -raw.Length);
        tensor.RawData = ByteString.CopyFrom(n < 0 ? raw[..(raw.Length + n)] : [.. raw, .. new byte[n]]);
        return $"{tensor.Name} raw_data {raw.Length} -> {raw.Length + n} bytes";
    }

    private static string? WeightDtype(Rng rng, BuiltModel m)
    {
        if (PickConv(rng, m) is not { } conv || Weight(m, conv.Weight) is not { } w) return null;
        int t = rng.Pick(0, 7, 8, 11, 16, 99);
        w.Proto.DataType = t;
        return $"{conv.Weight} data_type -> {t}";
    }

    private static string? HugeDims(Rng rng, BuiltModel m)
    {
        var g = m.Proto.Graph;
        if (rng.Chance(0.5) && PickConv(rng, m) is { } conv && Weight(m, conv.Weight) is { } w)
        {
            long big = rng.Pick(1_000_000_000L, 1L << 40, 100_000L);
            w.Proto.Dims[0] = big;
            return $"{conv.Weight} dims[0] = {big} (data unchanged)";
        }
        var t = new TensorProto { Name = "huge.unused", DataType = 1 };
        t.Dims.Add([1_000_000_000L, 1_000_000_000L]);
        g.Initializer.Add(t);
        return "an unused initializer declares dims [1e9, 1e9] with no data";
    }

    // ---- graph ---------------------------------------------------------------------------------------------

    private static string? DanglingInput(Rng rng, BuiltModel m)
    {
        var nodes = m.Proto.Graph.Node.Where(n => n.Input.Count > 0).ToList();
        var n = rng.Pick(nodes);
        int i = rng.Next(n.Input.Count);
        string old = n.Input[i];
        n.Input[i] = "ghost_value";
        return $"{n.Name} input {i} '{old}' -> undefined 'ghost_value'";
    }

    private static string? DuplicateNames(Rng rng, BuiltModel m)
    {
        var g = m.Proto.Graph;
        switch (rng.Next(5))
        {
            case 0:
                var t = rng.Pick(g.Initializer.ToList()).Clone();
                if (t.RawData.Length > 0) { var r = t.RawData.ToByteArray(); Array.Reverse(r); t.RawData = ByteString.CopyFrom(r); }
                g.Initializer.Add(t);
                return $"initializer '{t.Name}' defined twice";
            case 1:
            {
                var convs = g.Node.Where(n => n.OpType == "Conv").ToList();
                var other = g.Node.Where(n => n.OpType != "Conv" && n.OpType != "Constant").ToList();
                if (convs.Count == 0 || other.Count == 0) return null;
                var a = rng.Pick(convs);
                var b = rng.Pick(other);
                b.Name = a.Name;
                return $"node names: {b.OpType} renamed to '{a.Name}' (same as a Conv)";
            }
            case 2:
            {
                var convs = g.Node.Where(n => n.OpType == "Conv").ToList();
                if (convs.Count < 2) return null;
                convs[1].Name = convs[0].Name;
                return $"two Conv nodes named '{convs[0].Name}'";
            }
            case 3:
            {
                var relu = g.Node.FirstOrDefault(n => n.OpType == "Relu");
                if (relu is null) return null;
                var dup = ModelFactory.Node("Relu", "dup_producer", [relu.Input[0]], [relu.Output[0]]);
                g.Node.Insert(g.Node.IndexOf(relu) + 1, dup);
                return $"value '{relu.Output[0]}' produced by two nodes";
            }
            default:
                g.Input.Add(g.Input[0].Clone());
                return $"graph input '{g.Input[0].Name}' listed twice";
        }
    }

    private static string? GraphOutputs(Rng rng, BuiltModel m)
    {
        var g = m.Proto.Graph;
        switch (rng.Next(5))
        {
            case 0:
                g.Output.Clear();
                return "no graph outputs";
            case 1:
                g.Output.Add(ModelFactory.ValueInfo("ghost_output", 1, new object[] { 1L }));
                return "extra graph output naming an undefined value";
            case 2:
            {
                var n = rng.Pick(g.Node.Where(x => x.OpType is "Relu" or "Conv").ToList());
                g.Output.Add(new ValueInfoProto { Name = n.Output[0], Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
                return $"intermediate '{n.Output[0]}' also a graph output";
            }
            case 3:
                g.Output.Add(g.Output[0].Clone());
                return "graph output listed twice";
            default:
                g.Output.Add(g.Input[0].Clone());
                return "graph input also listed as a graph output";
        }
    }

    private static string? EmptyGraph(Rng rng, BuiltModel m)
    {
        if (rng.Chance(0.2)) { m.Proto.Graph = null; return "no graph at all"; }
        m.Proto.Graph.Node.Clear();
        if (rng.Chance(0.5)) m.Proto.Graph.Initializer.Clear();
        return "graph with no nodes";
    }

    private static string? Cycle(Rng rng, BuiltModel m)
    {
        var g = m.Proto.Graph;
        var convs = g.Node.Where(n => n.OpType == "Conv").ToList();
        var relus = g.Node.Where(n => n.OpType == "Relu").ToList();
        if (convs.Count == 0 || relus.Count == 0) return null;
        if (rng.Chance(0.3))
        {
            var r = rng.Pick(relus);
            r.Input[0] = r.Output[0];
            return $"{r.Name} reads its own output";
        }
        var first = convs[0];
        var last = relus[^1];
        first.Input[0] = last.Output[0];
        return $"{first.Name} reads '{last.Output[0]}' (a cycle through the trunk)";
    }

    private static string? UnknownOp(Rng rng, BuiltModel m)
    {
        var g = m.Proto.Graph;
        var n = rng.Pick(g.Node.Where(x => x.OpType is "Relu" or "Conv" or "GlobalAveragePool").ToList());
        switch (rng.Next(4))
        {
            case 0:
                string old = n.OpType;
                n.OpType = "Frobnicate";
                return $"{n.Name}: op {old} -> Frobnicate";
            case 1:
                n.Domain = "com.example.fuzz";
                m.Proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.example.fuzz", Version = 1 });
                return $"{n.Name}: domain com.example.fuzz (imported)";
            case 2:
                n.Domain = "com.example.fuzz";
                return $"{n.Name}: domain com.example.fuzz (not imported)";
            default:
                n.OpType = "";
                return $"{n.Name}: empty op_type";
        }
    }

    private static string? Ir3(Rng rng, BuiltModel m)
    {
        m.Proto.IrVersion = 3;
        var g = m.Proto.Graph;
        foreach (var t in g.Initializer)
            g.Input.Add(ModelFactory.ValueInfo(t.Name, t.DataType, [.. t.Dims]));
        return $"IR 3, opset {m.Proto.OpsetImport[0].Version}, every initializer also a graph input";
    }

    private static string? IrOpset(Rng rng, BuiltModel m)
    {
        switch (rng.Next(4))
        {
            case 0:
                long ir = rng.Pick(0L, -1L, 1L, 99L);
                m.Proto.IrVersion = ir;
                return $"ir_version {ir}";
            case 1:
                long v = rng.Pick(0L, 1L, 99L, -1L);
                m.Proto.OpsetImport[0].Version = v;
                return $"default opset version {v}";
            case 2:
                m.Proto.OpsetImport.Clear();
                return "no opset_import";
            default:
                m.Proto.OpsetImport[0].Domain = "ai.onnx.ml";
                return "opset_import names only ai.onnx.ml";
        }
    }

    private static string? InputDims(Rng rng, BuiltModel m)
    {
        var input = m.Proto.Graph.Input[0];
        var tt = input.Type.TensorType;
        switch (rng.Next(8))
        {
            case 0:
                tt.Shape = null;
                return $"input '{input.Name}' has no shape";
            case 1:
                int t = rng.Pick(7, 0, 10, 11);
                tt.ElemType = t;
                return $"input '{input.Name}' elem_type {t}";
            case 2:
                input.Type = null;
                return $"input '{input.Name}' has no type";
            default:
                int k = rng.Next(tt.Shape.Dim.Count);
                var dim = tt.Shape.Dim[k];
                object value = rng.Pick<object>(0L, -1L, 1_000_000_000L, 1L << 31, 1L << 40, "", "H");
                if (value is string s) dim.DimParam = s; else dim.DimValue = (long)value;
                return $"input '{input.Name}' dim {k} = {(value is string s2 ? $"param '{s2}'" : value)}";
        }
    }

    private static string? ExternalData(Rng rng, BuiltModel m)
    {
        var g = m.Proto.Graph;
        var ext = g.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External).ToList();
        if (ext.Count == 0) return null;
        var t = rng.Pick(ext);
        void Set(string key, string? value)
        {
            var e = t.ExternalData.FirstOrDefault(x => x.Key == key);
            if (value is null) { if (e is not null) t.ExternalData.Remove(e); return; }
            if (e is null) t.ExternalData.Add(new StringStringEntryProto { Key = key, Value = value });
            else e.Value = value;
        }
        switch (rng.Next(12))
        {
            case 0: return $"valid external data ({ext.Count} tensors in {ModelFactory.ExternalFile})";
            case 1: Set("location", null); return $"{t.Name}: no location";
            case 2: { string loc = rng.Pick("../outside.bin", "", ".", "nosuch.bin", "sub/../../x.bin"); Set("location", loc); return $"{t.Name}: location '{loc}'"; }
            case 3: { string off = rng.Pick("abc", "1e3", " 16", "0x10", "", "16.0"); Set("offset", off); return $"{t.Name}: offset '{off}' (not a number)"; }
            case 4: { string off = rng.Pick("-16", "99999999999999", "9223372036854775807", "99999999999999999999"); Set("offset", off); return $"{t.Name}: offset {off}"; }
            case 5: { string len = rng.Pick("xyz", "-1", "999999999", "0", "9223372036854775807", "4.5"); Set("length", len); return $"{t.Name}: length '{len}'"; }
            case 6: t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "0" }); return $"{t.Name}: offset given twice";
            case 7: t.ExternalData.Clear(); return $"{t.Name}: data_location EXTERNAL with no external_data entries";
            case 8: t.DataLocation = TensorProto.Types.DataLocation.Default; return $"{t.Name}: external_data entries but data_location DEFAULT";
            case 9:
            {
                var f = m.SideFiles[ModelFactory.ExternalFile];
                m.SideFiles[ModelFactory.ExternalFile] = f[..(f.Length / 2)];
                return $"{ModelFactory.ExternalFile} truncated to half";
            }
            case 10: m.SideFiles.Remove(ModelFactory.ExternalFile); return $"{ModelFactory.ExternalFile} missing";
            default: Set("checksum", "deadbeef"); Set("unknown_key", "1"); return $"{t.Name}: extra keys (checksum, unknown_key)";
        }
    }

    private static string? ConvAttributes(Rng rng, BuiltModel m)
    {
        var convs = m.Proto.Graph.Node.Where(n => n.OpType == "Conv").ToList();
        var n = rng.Pick(convs);
        void Put(AttributeProto a) { var old = n.Attribute.FirstOrDefault(x => x.Name == a.Name); if (old is not null) n.Attribute.Remove(old); n.Attribute.Add(a); }
        switch (rng.Next(6))
        {
            case 0: { long gr = rng.Pick(0L, -1L, 2L, 3L); Put(new AttributeProto { Name = "group", Type = AttributeProto.Types.AttributeType.Int, I = gr }); return $"{n.Name}: group={gr}"; }
            case 1: Put(ModelFactory.Ints("strides", 0, 0)); return $"{n.Name}: strides=[0,0]";
            case 2: Put(ModelFactory.Ints("pads", -1, -1, -1, -1)); return $"{n.Name}: pads=[-1,-1,-1,-1]";
            case 3: Put(ModelFactory.Ints("kernel_shape", 5, 5)); return $"{n.Name}: kernel_shape [5,5] contradicts the weight";
            case 4: Put(ModelFactory.Ints("dilations", 0, 0)); return $"{n.Name}: dilations=[0,0]";
            default: Put(new AttributeProto { Name = "auto_pad", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8("BOGUS") }); return $"{n.Name}: auto_pad=BOGUS";
        }
    }

    private static string? NodeOrder(Rng rng, BuiltModel m)
    {
        var nodes = m.Proto.Graph.Node.ToList();
        if (rng.Chance(0.5)) nodes.Reverse();
        else for (int i = nodes.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (nodes[i], nodes[j]) = (nodes[j], nodes[i]); }
        m.Proto.Graph.Node.Clear();
        m.Proto.Graph.Node.Add(nodes);
        return "nodes not in topological order";
    }

    private static string? ValueInfoWrong(Rng rng, BuiltModel m)
    {
        var conv = m.Proto.Graph.Node.FirstOrDefault(n => n.OpType == "Conv");
        if (conv is null) return null;
        long[] dims = rng.Chance(0.5) ? [1, 999, 2, 2] : [7];
        m.Proto.Graph.ValueInfo.Add(ModelFactory.ValueInfo(conv.Output[0], rng.Pick(1, 7), dims));
        return $"value_info of '{conv.Output[0]}' says [{string.Join(',', dims)}]";
    }

    /// <summary>Valid: float initializers in the float_data field instead of raw_data (as some exporters write them).</summary>
    private static string? FloatDataField(Rng rng, BuiltModel m)
    {
        var floats = m.Proto.Graph.Initializer.Where(t => t.DataType == 1 && t.RawData.Length > 0 && t.DataLocation != TensorProto.Types.DataLocation.External).ToList();
        if (floats.Count == 0) return null;
        bool all = rng.Chance(0.5);
        var chosen = all ? floats : [rng.Pick(floats)];
        foreach (var t in chosen)
        {
            var v = ModelFactory.ReadFloats(t);
            t.ClearRawData();
            t.FloatData.Add(v);
        }
        return all ? $"all {chosen.Count} float initializers in float_data (valid)" : $"{chosen[0].Name} in float_data (valid)";
    }

    private static string? ConstantCast(Rng rng, BuiltModel m)
    {
        var g = m.Proto.Graph;
        var constant = g.Node.FirstOrDefault(n => n.OpType == "Constant");
        var cast = g.Node.FirstOrDefault(n => n.OpType == "Cast");
        if (constant is not null && (cast is null || rng.Chance(0.5)))
        {
            switch (rng.Next(3))
            {
                case 0: constant.Attribute.Clear(); return $"{constant.Name}: no value attribute";
                case 1: constant.Attribute.Add(new AttributeProto { Name = "value_float", Type = AttributeProto.Types.AttributeType.Float, F = 1 }); return $"{constant.Name}: two value attributes";
                default: constant.Attribute[0].T = null; return $"{constant.Name}: value attribute without a tensor";
            }
        }
        if (cast is not null)
        {
            long to = rng.Pick(0L, 999L, 7L, 10L);
            cast.Attribute[0].I = to;
            return $"{cast.Name}: to={to}";
        }
        // No Constant or Cast: move a conv weight into a Constant node (valid).
        if (PickConv(rng, m) is not { } conv) return null;
        var init = g.Initializer.FirstOrDefault(t => t.Name == conv.Weight);
        if (init is null) return null;
        g.Initializer.Remove(init);
        var node = ModelFactory.Node("Constant", $"const:{init.Name}", [], [init.Name]);
        node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = init });
        g.Node.Insert(0, node);
        return $"{conv.Weight} moved into a Constant node (valid)";
    }
}
