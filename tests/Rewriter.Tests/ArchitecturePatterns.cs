using OnnxSlim.TestSupport;

namespace OnnxSlim.Rewriter.Tests;

/// <summary>
/// Small graphs of the patterns modern architectures are exported with (tools/bench/arch/README.md): grouped convs
/// (ResNeXt, RegNet-Y with its SE gate), YOLOv8's C2f in both export forms, SPPF, a ghost module. Inputs [1, 3, 16, 16].
/// </summary>
public static class ArchitecturePatterns
{
    public static readonly string[] All = ["grouped_conv", "grouped_se", "c2f_chunk", "c2f_split", "sppf", "ghost"];

    public static GraphBuilder Build(string name) => name switch
    {
        "grouped_conv" => GroupedConv(),
        "grouped_se" => GroupedSqueezeExcitation(),
        "c2f_chunk" => C2f(chunk: true),
        "c2f_split" => C2f(chunk: false),
        "sppf" => Sppf(),
        "ghost" => Ghost(),
        _ => throw new ArgumentException($"no pattern '{name}'"),
    };

    private static (GraphBuilder B, string X) Start()
    {
        var b = new GraphBuilder(13);
        return (b, b.Input("x", 1, 3, 16, 16));
    }

    /// <summary>ResNeXt bottleneck: 1×1 → 3×3 with 4 conv groups of 4 → 1×1, residual Add.</summary>
    private static GraphBuilder GroupedConv()
    {
        var (b, x) = Start();
        var stem = b.Relu(b.Conv(x, 3, 16));
        var h = b.Relu(b.Conv(stem, 16, 16, k: 1));
        h = b.Relu(b.Conv(h, 16, 16, group: 4));
        h = b.Conv(h, 16, 16, k: 1);
        var stream = b.Relu(b.Node("Add", [stem, h]));
        b.Output(b.Conv(stream, 16, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>RegNet-Y block: 1×1 → 3×3 stride 2 with 3 conv groups of 8 → SE gate (the scale as the Mul's first input) → 1×1, projection Add.</summary>
    private static GraphBuilder GroupedSqueezeExcitation()
    {
        var (b, x) = Start();
        var stem = b.Relu(b.Conv(x, 3, 12));
        var a = b.Relu(b.Conv(stem, 12, 24, k: 1));
        var g = b.Relu(b.Conv(a, 24, 24, group: 3, stride: 2));
        var s = b.Relu(b.Conv(b.Node("GlobalAveragePool", [g]), 24, 6, k: 1));
        s = b.Node("Sigmoid", [b.Conv(s, 6, 24, k: 1)]);
        g = b.Node("Mul", [s, g]);
        var c = b.Conv(g, 24, 12, k: 1);
        var projection = b.Conv(stem, 12, 12, k: 1, stride: 2);
        var stream = b.Relu(b.Node("Add", [projection, c]));
        b.Output(b.Conv(stream, 12, 4, k: 1), 1, 4, 8, 8);
        return b;
    }

    /// <summary>
    /// Two YOLOv8 C2f blocks: a backbone one (the second half through a residual bottleneck) and a neck one (no
    /// shortcut). <paramref name="chunk"/>: torch.chunk's export, split points computed Shape → Gather → Add → Div → Mul
    /// with one {1} constant shared by the Gather and both Slices; else torch.split's, a constant Split whose sizes
    /// constant both blocks share.
    /// </summary>
    private static GraphBuilder C2f(bool chunk)
    {
        var (b, x) = Start();
        var stem = b.Silu(b.Conv(x, 3, 8));
        string sharedSizes = chunk ? "" : b.ConstantInts("split", 8, 8);
        (string, string) Halves(string v)
        {
            if (!chunk)
            {
                var parts = b.NodeWithOutputs("Split", [v, sharedSizes], 2, ("axis", 1L));
                return (parts[0], parts[1]);
            }
            var one = b.ConstantInts("axis", 1);
            var channels = b.Node("Gather", [b.Node("Shape", [v]), one], ("axis", 0L));
            var half = b.Node("Div", [b.Node("Add", [channels, b.ConstantInts("c", 1)]), b.ConstantInts("c", 2)]);
            var end0 = b.Node("Mul", [half, b.ConstantInts("c", 1)]);
            var end1 = b.Node("Mul", [half, b.ConstantInts("c", 2)]);
            return (b.Node("Slice", [v, b.ConstantInts("c", 0), end0, one]), b.Node("Slice", [v, end0, end1, one]));
        }
        // Backbone C2f, shortcut on.
        var cv1 = b.Silu(b.Conv(stem, 8, 16, k: 1));
        var (p0, p1) = Halves(cv1);
        var m = b.Silu(b.Conv(b.Silu(b.Conv(p1, 8, 8)), 8, 8));
        var sum = b.Node("Add", [p1, m]);
        var cv2 = b.Silu(b.Conv(b.Node("Concat", [p0, p1, sum], ("axis", 1L)), 24, 16, k: 1));
        // Neck C2f, shortcut off.
        var cv1b = b.Silu(b.Conv(cv2, 16, 16, k: 1));
        var (q0, q1) = Halves(cv1b);
        var n = b.Silu(b.Conv(b.Silu(b.Conv(q1, 8, 8)), 8, 8));
        var cv2b = b.Silu(b.Conv(b.Node("Concat", [q0, q1, n], ("axis", 1L)), 24, 16, k: 1));
        b.Output(b.Conv(cv2b, 16, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>SPPF: a tensor concatenated with three chained 5×5 max-pools of itself.</summary>
    private static GraphBuilder Sppf()
    {
        var (b, x) = Start();
        var stem = b.Silu(b.Conv(x, 3, 16));
        var cv1 = b.Silu(b.Conv(stem, 16, 8, k: 1));
        string Pool(string v) => b.Node("MaxPool", [v], ("kernel_shape", new long[] { 5, 5 }), ("pads", new long[] { 2, 2, 2, 2 }), ("strides", new long[] { 1, 1 }));
        var p1 = Pool(cv1);
        var p2 = Pool(p1);
        var p3 = Pool(p2);
        var cv2 = b.Silu(b.Conv(b.Node("Concat", [cv1, p1, p2, p3], ("axis", 1L)), 32, 16, k: 1));
        b.Output(b.Conv(cv2, 16, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>GhostNet module: a primary 1×1 conv and a depthwise "cheap" conv of it, concatenated, then out[:, :oup].</summary>
    private static GraphBuilder Ghost()
    {
        var (b, x) = Start();
        var stem = b.Relu(b.Conv(x, 3, 8));
        var primary = b.Relu(b.Conv(stem, 8, 6, k: 1));
        var cheap = b.Relu(b.Conv(primary, 6, 6, group: 6));
        var ghost = b.Node("Slice", [b.Node("Concat", [primary, cheap], ("axis", 1L)), b.Ints("s", 0), b.Ints("e", 12), b.Ints("a", 1)]);
        var next = b.Relu(b.Conv(ghost, 12, 8, k: 1));
        b.Output(b.Conv(next, 8, 4, k: 1), 1, 4, 16, 16);
        return b;
    }
}
