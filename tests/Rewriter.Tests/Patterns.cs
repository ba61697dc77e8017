using OnnxSlim.TestSupport;
namespace OnnxSlim.Rewriter.Tests;

/// <summary>Small graphs, one per ONNX pattern the rewriter must handle (NOTES.md §2). Inputs are [1, 3, 16, 16].</summary>
public static class Patterns
{
    public static readonly string[] All =
    [
        "chain", "batchnorm", "residual", "concat", "densenet", "depthwise", "squeeze_excitation", "gap_gemm", "flatten_chw",
        "reshape", "shared_weight", "conv_transpose", "fp16_cast", "constant_nodes", "split_slice", "resize_fpn",
        "transpose_matmul", "prelu_pad_affine", "hardswish_decomposed", "reducemean_matmul",
    ];

    public static GraphBuilder Build(string name) => name switch
    {
        "chain" => Chain(),
        "batchnorm" => BatchNorm(),
        "residual" => Residual(),
        "concat" => Concat(),
        "densenet" => DenseNet(),
        "depthwise" => Depthwise(),
        "squeeze_excitation" => SqueezeExcitation(),
        "gap_gemm" => GapGemm(),
        "flatten_chw" => FlattenChw(),
        "reshape" => Reshape(),
        "shared_weight" => SharedWeight(),
        "conv_transpose" => ConvTranspose(),
        "fp16_cast" => Fp16Cast(),
        "constant_nodes" => ConstantNodes(),
        "split_slice" => SplitSlice(),
        "resize_fpn" => ResizeFpn(),
        "transpose_matmul" => TransposeMatMul(),
        "prelu_pad_affine" => PReluPadAffine(),
        "hardswish_decomposed" => HardSwishDecomposed(),
        "reducemean_matmul" => ReduceMeanMatMul(),
        _ => throw new ArgumentException($"no pattern '{name}'"),
    };

    private static (GraphBuilder B, string X) Start(long opset = 13)
    {
        var b = new GraphBuilder(opset);
        return (b, b.Input("x", 1, 3, 16, 16));
    }

    private static GraphBuilder Chain()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 8));
        h = b.Relu(b.Conv(h, 8, 16));
        b.Output(b.Conv(h, 16, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    private static GraphBuilder BatchNorm()
    {
        var (b, x) = Start();
        var h = b.Relu(b.BatchNorm(b.Conv(x, 3, 8, bias: false), 8));
        h = b.Relu(b.BatchNorm(b.Conv(h, 8, 12, bias: false), 12));
        b.Output(b.Conv(h, 12, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>A ResNet stage: a projection block (conv3 + downsample Add) and an identity block.</summary>
    private static GraphBuilder Residual()
    {
        var (b, x) = Start();
        var stem = b.Relu(b.BatchNorm(b.Conv(x, 3, 8), 8));
        var h = b.Relu(b.BatchNorm(b.Conv(stem, 8, 6, k: 1), 6));
        h = b.BatchNorm(b.Conv(h, 6, 16, k: 1), 16);
        var down = b.BatchNorm(b.Conv(stem, 8, 16, k: 1), 16);
        var stream = b.Relu(b.Node("Add", [h, down]));
        h = b.Relu(b.Conv(stream, 16, 6, k: 1));
        h = b.Conv(h, 6, 16, k: 3);
        stream = b.Relu(b.Node("Add", [stream, h]));
        b.Output(b.Conv(stream, 16, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>GoogLeNet-style inception: branches concatenated on the channel axis, then a conv reads segments at offsets.</summary>
    private static GraphBuilder Concat()
    {
        var (b, x) = Start();
        var stem = b.Relu(b.Conv(x, 3, 8));
        var a = b.Relu(b.Conv(stem, 8, 6, k: 1));
        var c = b.Relu(b.Conv(b.Relu(b.Conv(stem, 8, 4, k: 1)), 4, 10));
        var p = b.Relu(b.Conv(b.Node("MaxPool", [stem], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 })), 8, 5, k: 1));
        var cat = b.Node("Concat", [a, c, p], ("axis", 1L));
        b.Output(b.Conv(cat, 21, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>DenseNet: BatchNorm directly on a Concat (pre-activation), so BN parameters are sliced per segment.</summary>
    private static GraphBuilder DenseNet()
    {
        var (b, x) = Start();
        var stem = b.Conv(x, 3, 8);
        var features = b.Node("Concat", [stem], ("axis", 1L));
        for (int layer = 0; layer < 2; layer++)
        {
            int cin = 8 + 4 * layer;
            var h = b.Relu(b.BatchNorm(features, cin));
            h = b.Relu(b.BatchNorm(b.Conv(h, cin, 6, k: 1, bias: false), 6));
            var fresh = b.Conv(h, 6, 4, bias: false);
            features = b.Node("Concat", [features, fresh], ("axis", 1L));
        }
        var t = b.Relu(b.BatchNorm(features, 16));
        t = b.Node("AveragePool", [b.Node("Pad", [t, b.Ints("pads", 0, 0, 0, 0, 0, 0, 0, 0)], ("mode", "constant"))],
            ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }));
        b.Output(b.Conv(t, 16, 4, k: 1), 1, 4, 8, 8);
        return b;
    }

    /// <summary>MobileNetV2 inverted residual: expand → depthwise → project, Clip as ReLU6, residual Add.</summary>
    private static GraphBuilder Depthwise()
    {
        var (b, x) = Start();
        string Relu6(string v) => b.Node("Clip", [v, b.Init("min", [], [0f]), b.Init("max", [], [6f])]);
        var stem = Relu6(b.BatchNorm(b.Conv(x, 3, 8, bias: false), 8));
        var h = Relu6(b.BatchNorm(b.Conv(stem, 8, 24, k: 1, bias: false), 24));
        h = Relu6(b.BatchNorm(b.Conv(h, 24, 24, group: 24, bias: false), 24));
        h = b.BatchNorm(b.Conv(h, 24, 8, k: 1, bias: false), 8);
        var stream = b.Node("Add", [stem, h]);
        h = Relu6(b.Conv(stream, 8, 16, k: 1));
        h = Relu6(b.Conv(h, 16, 16, group: 16));
        b.Output(b.Conv(h, 16, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>Squeeze-excitation (PaddleOCR / MobileNetV3): GAP → Conv → ReLU → Conv → HardSigmoid → Mul broadcast back.</summary>
    private static GraphBuilder SqueezeExcitation()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 16));
        var s = b.Node("GlobalAveragePool", [h]);
        s = b.Relu(b.Conv(s, 16, 4, k: 1));
        s = b.Node("HardSigmoid", [b.Conv(s, 4, 16, k: 1)], ("alpha", 0.2f), ("beta", 0.5f));
        h = b.Node("Mul", [h, s]);
        b.Output(b.Conv(h, 16, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>Classifier: GlobalAveragePool → Flatten → Gemm (transB) → ReLU → Gemm.</summary>
    private static GraphBuilder GapGemm()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 12));
        h = b.Node("Flatten", [b.Node("GlobalAveragePool", [h])], ("axis", 1L));
        h = b.Relu(b.Node("Gemm", [h, b.Init("fc1", [10, 12]), b.Init("fc1b", [10])], ("transB", 1L)));
        b.Output(b.Node("Gemm", [h, b.Init("fc2", [10, 5]), b.Init("fc2b", [5])]), 1, 5);
        return b;
    }

    /// <summary>VGG classifier: Flatten of C×H×W (each channel owns H·W features) → Gemm, H·W known only from the weight.</summary>
    private static GraphBuilder FlattenChw()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 6));
        h = b.Node("MaxPool", [h], ("kernel_shape", new long[] { 4, 4 }), ("strides", new long[] { 4, 4 }));
        h = b.Node("Flatten", [h], ("axis", 1L));
        h = b.Relu(b.Node("Gemm", [h, b.Init("fc1", [96, 7]), b.Init("fc1b", [7])]));
        b.Output(b.Node("Gemm", [h, b.Init("fc2", [3, 7]), b.Init("fc2b", [3])], ("transB", 1L)), 1, 3);
        return b;
    }

    /// <summary>Reshapes with the channel count baked in: [1, C·H·W] literal, and [0, C, -1] then a MatMul over H·W.</summary>
    private static GraphBuilder Reshape()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 6));
        h = b.Node("AveragePool", [h], ("kernel_shape", new long[] { 4, 4 }), ("strides", new long[] { 4, 4 }));
        var flat = b.Node("Reshape", [h, b.Ints("shape", 1, 96)]);
        var y1 = b.Node("Gemm", [flat, b.Init("fc", [5, 96]), b.Init("fcb", [5])], ("transB", 1L));
        b.Output(y1, 1, 5);
        var g = b.Relu(b.Conv(x, 3, 5));
        var rows = b.Node("Reshape", [g, b.Ints("shape", 0, 5, -1)]);
        var mean = b.Node("ReduceMean", [rows], ("axes", new long[] { 2 }), ("keepdims", 0L));
        b.Output(b.Node("MatMul", [mean, b.Init("proj1", [5, 2])]), 1, 2);
        var pooled = b.Node("Reshape", [b.Node("GlobalAveragePool", [g]), b.Ints("shape", -1, 5)]);
        b.Output(b.Node("MatMul", [pooled, b.Init("proj", [5, 2])]), 1, 2);
        return b;
    }

    /// <summary>FasterRCNN RPN head: one weight initializer shared by the conv at every pyramid level.</summary>
    private static GraphBuilder SharedWeight()
    {
        var (b, x) = Start();
        var p1 = b.Relu(b.Conv(x, 3, 8));
        var p2 = b.Relu(b.Conv(x, 3, 8, stride: 2));
        var w = b.Init("shared_w", [6, 8, 3, 3]);
        var bias = b.Init("shared_b", [6]);
        var head = b.Init("head_w", [3, 6, 1, 1]);
        foreach (var (p, size) in new[] { (p1, 16L), (p2, 8L) })
        {
            var t = b.Relu(b.Node("Conv", [p, w, bias], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 })));
            var o = b.Node("Conv", [t, head], ("kernel_shape", new long[] { 1, 1 }));
            b.Output(o, 1, 3, size, size);
        }
        return b;
    }

    /// <summary>PaddleOCR DB head: ConvTranspose (weight C_in × C_out × k × k) + per-channel Add + BatchNorm.</summary>
    private static GraphBuilder ConvTranspose()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 8));
        h = b.Node("ConvTranspose", [h, b.Init("wt", [8, 6, 2, 2])], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }));
        h = b.Node("Add", [h, b.Init("bias", [1, 6, 1, 1], b.Normal(6, 0.1))]);
        h = b.Relu(b.BatchNorm(h, 6));
        h = b.Node("ConvTranspose", [h, b.Init("wt2", [6, 4, 2, 2]), b.Init("bt2", [4])], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }));
        b.Output(b.Node("Sigmoid", [h]), 1, 4, 64, 64);
        return b;
    }

    /// <summary>Background-removal style: fp16 weights stored as initializers and Cast to float before the Conv.</summary>
    private static GraphBuilder Fp16Cast()
    {
        var (b, x) = Start();
        string Half(string stem, long[] dims) => b.Node("Cast", [b.Init(stem, dims, null, GraphIO.DataType.Float16)], ("to", 1L));
        var h = b.Relu(b.Node("Conv", [x, Half("w1", [8, 3, 3, 3]), Half("b1", [8])], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 })));
        h = b.Node("Mul", [h, Half("scale", [1, 8, 1, 1])]);
        h = b.Relu(b.Node("Conv", [h, Half("w2", [6, 8, 3, 3])], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 })));
        b.Output(b.Conv(h, 6, 3, k: 1), 1, 3, 16, 16);
        return b;
    }

    /// <summary>PaddleOCR export: weights in Constant nodes, separate BN, per-channel Mul/Add constants.</summary>
    private static GraphBuilder ConstantNodes()
    {
        var (b, x) = Start(opset: 11);
        var h = b.Node("Conv", [x, b.ConstantNode("w1", [8, 3, 3, 3])], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }));
        h = b.Node("BatchNormalization", [h, b.ConstantNode("g", [8], b.Uniform(8, 0.5, 1.5)), b.ConstantNode("be", [8], b.Normal(8, 0.2)),
            b.ConstantNode("m", [8], b.Normal(8, 0.2)), b.ConstantNode("v", [8], b.Uniform(8, 0.5, 1.5))]);
        h = b.Relu(h);
        h = b.Node("Mul", [b.ConstantNode("s", [8, 1, 1], b.Uniform(8, 0.5, 1.5)), h]);
        h = b.Node("Add", [h, b.ConstantNode("t", [1, 8, 1, 1], b.Normal(8, 0.1))]);
        h = b.Relu(b.Node("Conv", [h, b.ConstantNode("w2", [6, 8, 1, 1]), b.ConstantNode("b2", [6], b.Normal(6, 0.1))], ("kernel_shape", new long[] { 1, 1 })));
        b.Output(b.Node("Conv", [h, b.ConstantNode("w3", [2, 6, 1, 1])], ("kernel_shape", new long[] { 1, 1 })), 1, 2, 16, 16);
        return b;
    }

    /// <summary>YOLO-style Split of a conv's channels into two parts, a channel Slice, and a Concat that puts them back together.</summary>
    private static GraphBuilder SplitSlice()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 12));
        var parts = b.NodeWithOutputs("Split", [h, b.Ints("split", 5, 7)], 2, ("axis", 1L));
        var left = b.Relu(b.Conv(parts[0], 5, 4, k: 1));
        var mid = b.Node("Slice", [parts[1], b.Ints("starts", 1), b.Ints("ends", 6), b.Ints("axes", 1)]);
        var right = b.Relu(b.Conv(mid, 5, 4, k: 1));
        var cat = b.Node("Concat", [left, parts[1], right], ("axis", 1L));
        b.Output(b.Conv(cat, 15, 3, k: 1), 1, 3, 16, 16);
        return b;
    }

    /// <summary>FPN top-down path: lateral 1×1 convs, nearest Resize (constant scales, constant sizes) + Add, then 3×3 output convs.</summary>
    private static GraphBuilder ResizeFpn()
    {
        var (b, x) = Start();
        var c1 = b.Relu(b.Conv(x, 3, 8));
        var c2 = b.Relu(b.Conv(c1, 8, 12, stride: 2));
        var c3 = b.Relu(b.Conv(c2, 12, 16, stride: 2));
        var l3 = b.Conv(c3, 16, 6, k: 1);
        var l2 = b.Conv(c2, 12, 6, k: 1);
        var l1 = b.Conv(c1, 8, 6, k: 1);
        var up3 = b.Node("Resize", [l3, b.Init("roi", [0], []), b.Init("scales", [4], [1, 1, 2, 2])], ("mode", "nearest"));
        var i2 = b.Node("Add", [l2, up3]);
        var empty = b.Init("scales_none", [0], []);
        var up2 = b.Node("Resize", [i2, b.Init("roi", [0], []), empty, b.Ints("sizes", 1, 6, 16, 16)], ("mode", "nearest"));
        var i1 = b.Node("Add", [l1, up2]);
        b.Output(b.Conv(i1, 6, 4), 1, 4, 16, 16);
        b.Output(b.Conv(i2, 6, 4), 1, 4, 8, 8);
        // torchvision FPN: sizes = Concat(Shape(x)[0:2], Shape(target)[2:4]), computed at run time.
        var sizes = b.Node("Concat", [b.Node("Slice", [b.Node("Shape", [i2]), b.Ints("s", 0), b.Ints("e", 2)]),
            b.Node("Slice", [b.Node("Shape", [l1]), b.Ints("s", 2), b.Ints("e", 4)])], ("axis", 0L));
        var up = b.Node("Resize", [i2, "", "", sizes], ("mode", "nearest"));
        b.Output(b.Conv(b.Node("Add", [l1, up]), 6, 4, k: 1), 1, 4, 16, 16);
        return b;
    }

    /// <summary>Channels-last linear layers: Transpose NCHW → NHWC, MatMul + bias, ReLU, MatMul.</summary>
    private static GraphBuilder TransposeMatMul()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 8));
        h = b.Node("Transpose", [h], ("perm", new long[] { 0, 2, 3, 1 }));
        h = b.Relu(b.Node("Add", [b.Node("MatMul", [h, b.Init("w1", [8, 10])]), b.Init("b1", [10], b.Normal(10, 0.1))]));
        b.Output(b.Node("MatMul", [h, b.Init("w2", [10, 3])]), 1, 16, 16, 3);
        return b;
    }

    /// <summary>Per-channel PRelu slope, spatial Pad, and a normalisation (x − μ) / σ with per-channel constants.</summary>
    private static GraphBuilder PReluPadAffine()
    {
        var (b, x) = Start();
        var h = b.Conv(x, 3, 8);
        h = b.Node("PRelu", [h, b.Init("slope", [8, 1, 1], b.Uniform(8, 0.05, 0.3))]);
        h = b.Node("Pad", [h, b.Ints("pads", 0, 0, 1, 1, 0, 0, 1, 1)], ("mode", "constant"));
        h = b.Node("Sub", [h, b.Init("mu", [1, 8, 1, 1], b.Normal(8, 0.1))]);
        h = b.Node("Div", [h, b.Init("sigma", [8, 1, 1], b.Uniform(8, 0.5, 1.5))]);
        h = b.Relu(h);
        b.Output(b.Conv(h, 8, 4, k: 1), 1, 4, 18, 18);
        return b;
    }

    /// <summary>ReduceMean over H, W (keepdims 0) → MatMul, and a ReduceMean that keeps dims before a conv.</summary>
    private static GraphBuilder ReduceMeanMatMul()
    {
        var (b, x) = Start();
        var h = b.Relu(b.Conv(x, 3, 8));
        var pooled = b.Node("ReduceMean", [h], ("axes", new long[] { 2, 3 }), ("keepdims", 0L));
        b.Output(b.Node("MatMul", [pooled, b.Init("w", [8, 5])]), 1, 5);
        var rows = b.Node("ReduceMean", [h], ("axes", new long[] { 3 }), ("keepdims", 1L));
        b.Output(b.Conv(rows, 8, 2, k: 1), 1, 2, 16, 1);
        return b;
    }

    /// <summary>PaddleOCR's decomposed HardSwish x·clip(x+3, 0, 6)/6 with a learnable scalar affine: both operands of the Mul are the same channels.</summary>
    private static GraphBuilder HardSwishDecomposed()
    {
        var (b, x) = Start(opset: 11);
        var h = b.Conv(x, 3, 8);
        h = b.Node("Add", [b.Node("Mul", [b.ConstantNode("a", [1], [0.9f]), h]), b.ConstantNode("c", [1], [0.05f])]);
        var gate = b.Node("Clip", [b.Node("Add", [h, b.ConstantNode("three", [], [3f])]), b.ConstantNode("lo", [], [0f]), b.ConstantNode("hi", [], [6f])]);
        h = b.Node("Div", [b.Node("Mul", [h, gate]), b.ConstantNode("six", [], [6f])]);
        h = b.Relu(b.Conv(h, 8, 8, group: 8));
        b.Output(b.Conv(h, 8, 4, k: 1), 1, 4, 16, 16);
        return b;
    }
}
