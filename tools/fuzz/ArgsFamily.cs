namespace OnnxSlim.Fuzz;

/// <summary>Argument mutations: bad, absent and odd values for every option of every command, and output
/// paths that point at the input, through links, through `..`, into missing folders, onto folders, or at another output.</summary>
internal static class ArgsFamily
{
    private static readonly Dictionary<string, string[]> CommandOptions = new()
    {
        ["prune"] = ["--cr", "--target", "--criterion", "--allocation", "--ignore", "--min-keep", "--round-to", "--calib", "--compensation",
            "--shape", "--provider", "--runs", "--report", "--plan-out", "--plan-in", "--seed"],
        ["inspect"] = ["--shape"],
        ["analyze"] = ["--cr", "--target", "--min-keep", "--plot", "--shape"],
        ["bench"] = ["--vs", "--runs", "--warmup", "--batch", "--threads", "--shape", "--provider"],
        ["validate"] = ["--inputs", "--min-cosine", "--min-top1", "--shape", "--provider"],
    };

    /// <summary>Options whose value names one of a few words: a number there is an enum index, and must be refused.</summary>
    private static readonly HashSet<string> EnumOptions = ["--target", "--criterion", "--allocation", "--compensation", "--provider"];

    private static string[] Values(string option, BuiltModel m)
    {
        string i = m.InputName;
        var s = m.InputShape;
        string dims(params long[] d) => string.Join(',', d);
        return option switch
        {
            "--cr" => ["-0.1", "0", "0.95", "0.951", "1", "1.5", "NaN", "nan", "Infinity", "-Infinity", "1e308", "abc", "", "0x1", "0,5", "5e-1", " 0.5", "1e-320"],
            "--target" => ["macs", "params", "filters", "MACS", "Params", "2", "0", "-1", "99", "bogus", "", "macs,params", " macs"],
            "--criterion" => ["gem", "l1", "l2", "random", "refit", "GEM", "1", "", "bogus", "l3"],
            "--allocation" => ["sliming", "uniform", "0", "1", "5", "bogus", "", "UNIFORM"],
            "--compensation" => ["none", "exact", "data-free", "1", "", "DATA-FREE", "datafree"],
            "--ignore" => [.. m.Convs.Take(2).Select(c => c.Node), "*", "conv*", "nosuch", "", "[", "(", "\\", "**", ".*", "?", "/"],
            "--min-keep" => ["0", "1", "0.5", "-0.1", "1.1", "NaN", "abc", "1e-300", "Infinity", ""],
            "--round-to" => ["auto", "1", "8", "0", "-1", "abc", "1000", "2147483648", "AUTO", ""],
            "--runs" => ["1", "0", "-1", "abc", "2147483648", "3", "", " 2"],
            "--seed" => ["0", "-1", "2147483647", "2147483648", "abc", ""],
            "--provider" => ["cpu", "cuda", "CPU", "gpu", "", "tpu", "1"],
            "--warmup" => ["0", "-1", "abc", "2", ""],
            "--batch" => ["0", "-1", "2", "abc", "1000000000", "64", ""],
            "--threads" => ["-1", "0", "1", "100", "abc"],
            "--min-cosine" => ["NaN", "2", "-1", "abc", "0.999999", "1", ""],
            "--min-top1" => ["NaN", "2", "-1", "abc", "1", "0.5"],
            "--shape" =>
            [
                $"{i}={dims(1, s[1], s[2], s[3])}", $"{i}={dims(2, s[1], s[2], s[3])}", $"{i}={dims(1_000_000_000, s[1], s[2], s[3])}",
                dims(1, s[1], s[2], s[3]), $"{i}={dims(0, s[1], s[2], s[3])}", $"{i}={dims(-1, s[1], s[2], s[3])}", $"{i}={dims(1, s[1], s[2])}",
                $"nosuch={dims(1, s[1], s[2], s[3])}", $"{i}=", "=", $"{i}=a,b", $"{i}=1x{s[1]}x{s[2]}x{s[3]}",
                $"{i}=99999999999999999999,{s[1]},{s[2]},{s[3]}", $"{i}={dims(1, s[1], 100000, 100000)}", $"{i}={dims(1, s[1], 1, 1)}",
                $"{i}={dims(1, s[1] + 1, s[2], s[3])}", $"{i}={dims(1, s[1], s[2], s[3])},", $"{i}=={dims(1, s[1], s[2], s[3])}", "",
                $"{i}={dims(1, s[1], s[2] * 2, s[3] * 2)}",
            ],
            _ => [""],
        };
    }

    public static FuzzCase Make(Ctx c)
    {
        var rng = c.Rng;
        var m = c.Base(0.3);
        string command = rng.Weighted((55, "prune"), (10, "inspect"), (10, "analyze"), (10, "bench"), (15, "validate"));
        var files = Ctx.ModelFiles(m);
        var pos = new List<string> { "model.onnx" };
        var opts = new List<string>();
        var what = new List<string>();
        string? mustRefuse = null;
        switch (command)
        {
            case "prune":
                opts.AddRange(["-o", "out.onnx"]);
                if (rng.Chance(0.7)) opts.Add("--no-bench");
                break;
            case "inspect":
                if (rng.Chance(0.5)) opts.Add("--groups");
                if (rng.Chance(0.5)) opts.Add("--json");
                break;
            case "analyze":
                if (rng.Chance(0.5)) opts.Add("--json");
                break;
            case "bench":
                opts.AddRange(["--runs", "2", "--warmup", "0"]);
                break;
            default:
                bool same = rng.Chance(0.4);
                if (!same)
                {
                    var other = ModelFactory.Build(NetSpec.Random(rng), rng);
                    files.Add(CaseFile.Input("other.onnx", other.Bytes));
                    foreach (var (k, v) in other.SideFiles) if (!files.Any(f => f.Path == k)) files.Add(CaseFile.Input(k, v));
                }
                pos.Add(same ? "model.onnx" : "other.onnx");
                break;
        }

        int count = rng.Weighted((6, 1), (3, 2), (1, 3));
        for (int k = 0; k < count; k++)
        {
            double x = rng.NextDouble();
            if (command == "prune" && x < 0.4) what.Add(OutputPath(rng, pos, opts, files, ref mustRefuse));
            else if (x < 0.55) what.Add(ModelArgument(rng, command, pos, files));
            else if (x < 0.7) what.Add(Generic(rng, command, pos, opts, files));
            else
            {
                string option = rng.Chance(0.2) ? "--shape" : rng.Pick(CommandOptions[command]);
                what.Add(OptionValue(rng, option, m, opts, files, ref mustRefuse));
            }
        }
        var args = new List<string>();
        if (command != "prune") args.Add(command);
        // Positionals first, or after the options now and then (both are accepted).
        if (rng.Chance(0.85)) { args.AddRange(pos); args.AddRange(opts); }
        else { args.AddRange(opts); args.AddRange(pos); }
        return c.Case($"{m.Describe}: {command}: {string.Join("; ", what)}", args, Dedup(files), mustRefuse);
    }

    private static List<CaseFile> Dedup(List<CaseFile> files) =>
        [.. files.GroupBy(f => f.Path).Select(g => g.Last())];

    private static string OptionValue(Rng rng, string option, BuiltModel m, List<string> opts, List<CaseFile> files, ref string? mustRefuse)
    {
        switch (option)
        {
            case "--report":
            {
                string v = rng.Pick("r.json", "r.html", "r.htm", "r.txt", "R.JSON", "missing/r.json", "sub", "", "r");
                if (v == "sub") files.Add(CaseFile.Folder("sub"));
                opts.AddRange([option, v]);
                return $"--report '{v}'";
            }
            case "--plan-out":
            {
                string v = rng.Pick("p.json", "missing/p.json", "sub", "", "p.txt", "p");
                if (v == "sub") files.Add(CaseFile.Folder("sub"));
                opts.AddRange([option, v]);
                return $"--plan-out '{v}'";
            }
            case "--plot":
            {
                string v = rng.Pick("p.svg", "p.html", "p.png", "P.SVG", "missing/p.svg", "sub", "", "link.svg");
                if (v == "sub") files.Add(CaseFile.Folder("sub"));
                if (v == "link.svg") files.Add(CaseFile.Link("link.svg", "model.onnx", FileRole.Existing));
                opts.AddRange([option, v]);
                return v == "link.svg" ? "--plot link.svg, a symlink to the input model" : $"--plot '{v}'";
            }
            case "--plan-in" or "--calib" or "--inputs" or "--vs":
            {
                string v = rng.Pick("nosuch.json", "sub", "model.onnx", "empty.dat", "", "garbage.dat");
                if (v == "sub") files.Add(CaseFile.Folder("sub"));
                if (v == "empty.dat") files.Add(CaseFile.Input("empty.dat", []));
                if (v == "garbage.dat") files.Add(CaseFile.Input("garbage.dat", rng.Bytes(200)));
                if (option == "--vs" && rng.Chance(0.4)) v = "model.onnx";
                opts.AddRange([option, v]);
                return $"{option} '{v}'";
            }
            default:
            {
                string v = rng.Pick(Values(option, m));
                if (option == "--shape" && rng.Chance(0.2))
                {
                    string v2 = rng.Pick(Values(option, m));
                    opts.AddRange([option, v, option, v2]);
                    return $"--shape '{v}' --shape '{v2}'";
                }
                opts.AddRange([option, v]);
                if (EnumOptions.Contains(option) && long.TryParse(v, out _))
                    mustRefuse = $"{option} {v}: an enum option given as a number";
                return $"{option} '{v}'";
            }
        }
    }

    /// <summary>-o and the other outputs against the input, links, `..`, missing folders, folders, and each other.</summary>
    private static string OutputPath(Rng rng, List<string> pos, List<string> opts, List<CaseFile> files, ref string? mustRefuse)
    {
        void SetO(string v) { int k = opts.IndexOf("-o"); if (k >= 0) opts[k + 1] = v; else opts.AddRange(["-o", v]); }
        switch (rng.Next(24))
        {
            case 0: SetO(""); return "-o ''";
            case 1:
                SetO("model.onnx");
                if (rng.Chance(0.4)) { opts.Add("--force"); return "-o is the input model, with --force"; }
                return "-o is the input model";
            case 2: SetO("./model.onnx"); return "-o ./model.onnx (the input)";
            case 3: files.Add(CaseFile.Folder("sub")); SetO("sub/../model.onnx"); return "-o sub/../model.onnx (the input through ..)";
            case 4: SetO(rng.Pick("Model.onnx", "MODEL.ONNX")); return "-o a case variant of the input's name";
            case 5: SetO(rng.Pick("missing/out.onnx", "missing/deeper/out.onnx")); return "-o into a missing folder";
            case 6: files.Add(CaseFile.Folder("sub")); SetO(rng.Pick("sub", "sub/", ".")); return "-o onto a folder";
            case 7:
                files.Add(CaseFile.Link("link.onnx", "model.onnx", FileRole.Existing));
                SetO("link.onnx");
                return "-o link.onnx, a symlink to the input";
            case 8:
            {
                // The input given through a symlink whose target is the -o path.
                var model = TheModel(files);
                files.Remove(model);
                files.Add(CaseFile.Input("real.onnx", model.Content!));
                files.Add(CaseFile.Link("model.onnx", "real.onnx"));
                SetO("real.onnx");
                return "input model.onnx is a symlink to real.onnx, -o real.onnx";
            }
            case 9:
                files.Add(CaseFile.Folder("sub"));
                files.Add(CaseFile.Link("linkdir", "sub", FileRole.Existing));
                SetO("linkdir/out.onnx");
                return "-o through a symlinked folder (valid)";
            case 10: opts.AddRange(["--report", "out.json"]); SetO("out.json"); return "-o equals --report (out.json)";
            case 11: opts.AddRange(["--plan-out", "out.onnx"]); SetO("out.onnx"); return "-o equals --plan-out";
            case 12: opts.AddRange(["--plan-out", "model.onnx"]); return "--plan-out is the input model";
            case 13:
            {
                var model = TheModel(files);
                files.Remove(model);
                files.Add(CaseFile.Input("model.json", model.Content!));
                if (pos.Count == 0) pos.Add("model.json"); else pos[0] = "model.json";
                opts.AddRange(["--report", "model.json"]);
                return "input named model.json, --report model.json";
            }
            case 14: opts.AddRange(["--plan-out", "same.json", "--report", "same.json"]); return "--plan-out equals --report";
            case 15:
            {
                string o = rng.Pick("--report", "--plan-out");
                files.Add(CaseFile.Link("r.json", "model.onnx", FileRole.Existing));
                opts.AddRange([o, "r.json"]);
                return $"{o} r.json, a symlink to the input model";
            }
            case 16:
            {
                string o = rng.Pick("--report", "--plan-out");
                string v = rng.Pick("missing/r.json", "sub", "");
                if (v == "sub") files.Add(CaseFile.Folder("sub"));
                opts.AddRange([o, v]);
                return $"{o} '{v}'";
            }
            case 17: SetO(new string('a', 300) + ".onnx"); return "-o a 306-character file name";
            case 18: files.Add(CaseFile.Existing("out.onnx", "old output"u8.ToArray())); return "-o over an existing unrelated file (valid)";
            case 19:
            {
                string v = rng.Pick("ünïcødé.onnx", "my out.onnx", "a\nb.onnx", "-", "out", "out.txt");
                SetO(v);
                return $"-o '{v.Replace("\n", "\\n")}'";
            }
            case 20: opts.AddRange(["-o", "second.onnx"]); return "-o given twice";
            case 21:
            {
                int k = opts.IndexOf("-o");
                if (k >= 0) opts.RemoveRange(k, 2);
                if (rng.Chance(0.3)) { files.Add(CaseFile.Folder("model.slim.onnx")); return "no -o, and the default output model.slim.onnx is a folder"; }
                return "no -o (default output)";
            }
            case 22:
                files.Add(CaseFile.Link("out.onnx", "nosuch.onnx", FileRole.Existing));
                return "-o out.onnx is a dangling symlink";
            default:
                files.Add(CaseFile.Folder("sub"));
                opts.AddRange(["--report", rng.Pick("sub/r.json", "sub/r.html"), "--plan-out", "sub/p.json"]);
                return "--report and --plan-out into an existing folder (valid)";
        }
    }

    /// <summary>The input model file (an earlier mutation may have renamed it).</summary>
    private static CaseFile TheModel(List<CaseFile> files) =>
        files.FirstOrDefault(f => f.Path == "model.onnx" && f.Content is not null) ?? files.First(f => f.Role == FileRole.Input && f.Content is not null);

    private static string ModelArgument(Rng rng, string command, List<string> pos, List<CaseFile> files)
    {
        if (pos.Count == 0) return "(MODEL stays absent)";
        switch (rng.Next(11))
        {
            case 0:
            {
                // The file MODEL named is read no more: like any other file there, the CLI may write to it when an option
                // names it (an earlier "--report model.json" on an input named model.json).
                int at = files.FindIndex(f => f.Path == pos[0] && f.Role == FileRole.Input);
                if (at >= 0) files[at] = files[at] with { Role = FileRole.Existing };
                pos.RemoveAt(0);
                return "MODEL absent";
            }
            case 1: pos[0] = "nosuch.onnx"; return "MODEL does not exist";
            case 2: files.Add(CaseFile.Folder("sub")); pos[0] = "sub"; return "MODEL is a folder";
            case 3: pos[0] = ""; return "MODEL ''";
            case 4: pos.Insert(0, "model.onnx"); return "MODEL given twice";
            case 5: pos[0] = "-"; return "MODEL '-'";
            case 6: files.Add(CaseFile.Link("dangling.onnx", "nosuch.onnx")); pos[0] = "dangling.onnx"; return "MODEL a dangling symlink";
            case 7: files.Add(CaseFile.Folder("sub")); pos[0] = "sub/../model.onnx"; return "MODEL sub/../model.onnx (valid)";
            case 8:
            {
                var model = TheModel(files);
                string name = rng.Pick("model", "model.ONNX", "mo del.onnx");
                // model.onnx stays beside it, but the run does not read it: an output may name it (--plan-out model.onnx).
                files.Remove(model);
                files.Add(CaseFile.Existing(model.Path, model.Content!));
                files.Add(CaseFile.Input(name, model.Content!));
                pos[0] = name;
                return $"MODEL named '{name}' (valid)";
            }
            case 9: files.Add(CaseFile.Link("alias.onnx", "model.onnx")); pos[0] = "alias.onnx"; return "MODEL through a symlink (valid)";
            default:
                files.Add(CaseFile.Input("args.rsp", Text.Utf8("model.onnx\n")));
                pos[0] = rng.Pick("@args.rsp", "@model.onnx", "@nosuch.rsp");
                return $"MODEL '{pos[0]}' (response-file syntax)";
        }
    }

    private static string Generic(Rng rng, string command, List<string> pos, List<string> opts, List<CaseFile> files)
    {
        switch (rng.Next(12))
        {
            case 0: opts.Add(rng.Pick("--bogus", "--bogus=1", "-x", "--CR", "---cr")); return $"unknown option {opts[^1]}";
            case 1: { string o = rng.Pick(CommandOptions[command].Length > 0 ? CommandOptions[command] : ["--shape"]); opts.Add(o); return $"{o} without its value (last)"; }
            case 2:
            {
                string o = rng.Pick(CommandOptions[command]);
                opts.Insert(0, o);
                return $"{o} followed by another token instead of its value";
            }
            case 3: opts.Add(rng.Pick("--no-validate=true", "--json=false", "--force=yes", "--verbose=1")); return $"flag with a value {opts[^1]}";
            case 4:
            {
                string o = rng.Pick(CommandOptions[command]);
                opts.AddRange([o, "1", o, "2"]);
                return $"{o} given twice";
            }
            case 5: opts.Add(rng.Pick("--help", "-h", "--version")); return $"{opts[^1]}";
            case 6: opts.Insert(0, "--"); return "'--' before the arguments";
            case 7:
            {
                var other = CommandOptions.Where(kv => kv.Key != command).SelectMany(kv => kv.Value).Except(CommandOptions[command]).ToList();
                string o = rng.Pick(other);
                opts.AddRange([o, "1"]);
                return $"{o} (an option of another command)";
            }
            case 8: opts.Add(command == "prune" ? "--json" : "--json"); opts.Add("--verbose"); return "--json --verbose";
            case 9: pos.Add("extra.onnx"); return "an extra positional argument";
            case 10: opts.AddRange(["--cr", "0.5", "--cr=0.3"]); return "--cr 0.5 then --cr=0.3";
            default: opts.Add(""); return "an empty argument";
        }
    }
}
