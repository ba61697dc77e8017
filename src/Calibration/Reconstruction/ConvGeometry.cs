using OnnxSlim.GraphIO;

namespace OnnxSlim.Calibration;

/// <summary>
/// Where each output position of a Conv reads its input, in 2-D (a 1-D conv is a 2-D one of height 1):
/// input size, kernel, strides, dilations, leading pads (after auto_pad) and output size.
/// </summary>
internal readonly record struct ConvGeometry(
    int InH, int InW, int KernelH, int KernelW, int StrideH, int StrideW,
    int DilationH, int DilationW, int PadTop, int PadLeft, int OutH, int OutW)
{
    public int KernelArea => KernelH * KernelW;
    public int OutArea => OutH * OutW;
    public int InArea => InH * InW;

    /// <summary>Reads the attributes of <paramref name="conv"/> for weights of <paramref name="weightDims"/> on an input of <paramref name="inputShape"/> (N, C, spatial…).</summary>
    public static ConvGeometry Resolve(Node conv, IReadOnlyList<long> weightDims, IReadOnlyList<long> inputShape)
    {
        int spatial = weightDims.Count - 2;
        if (spatial is < 1 or > 2) throw new LayerSkippedException($"{spatial}-D convolution is not supported");
        if (inputShape.Count != spatial + 2)
            throw new LayerSkippedException($"input has rank {inputShape.Count}, the {spatial}-D kernel needs {spatial + 2}");
        long[] kernel = conv.GetInts("kernel_shape") is { Length: > 0 } ks ? ks : [.. weightDims.Skip(2)];
        long[] strides = conv.GetInts("strides") is { Length: > 0 } s ? s : Ones(spatial);
        long[] dilations = conv.GetInts("dilations") is { Length: > 0 } d ? d : Ones(spatial);
        long[] pads = conv.GetInts("pads") is { Length: > 0 } p ? p : new long[2 * spatial];
        if (kernel.Length != spatial || strides.Length != spatial || dilations.Length != spatial || pads.Length != 2 * spatial)
            throw new LayerSkippedException("kernel_shape/strides/dilations/pads do not match the kernel rank");
        for (int i = 0; i < spatial; i++)
            if (kernel[i] != weightDims[2 + i]) throw new LayerSkippedException($"kernel_shape {kernel[i]} differs from the weight's {weightDims[2 + i]}");
        string autoPad = conv.GetString("auto_pad") ?? "NOTSET";
        var begin = new long[spatial];
        var outSize = new long[spatial];
        for (int i = 0; i < spatial; i++)
        {
            long input = inputShape[2 + i], extent = (kernel[i] - 1) * dilations[i] + 1;
            if (strides[i] < 1 || dilations[i] < 1) throw new LayerSkippedException("non-positive stride or dilation");
            switch (autoPad)
            {
                case "" or "NOTSET":
                    begin[i] = pads[i];
                    outSize[i] = (input + pads[i] + pads[i + spatial] - extent) / strides[i] + 1;
                    break;
                case "VALID":
                    begin[i] = 0;
                    outSize[i] = (input - extent) / strides[i] + 1;
                    break;
                case "SAME_UPPER" or "SAME_LOWER":
                    outSize[i] = (input + strides[i] - 1) / strides[i];
                    long total = Math.Max(0, (outSize[i] - 1) * strides[i] + extent - input);
                    begin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                    break;
                default:
                    throw new LayerSkippedException($"unknown auto_pad '{autoPad}'");
            }
            if (outSize[i] < 1) throw new LayerSkippedException("empty output");
        }
        return spatial == 1
            ? new ConvGeometry(1, (int)inputShape[2], 1, (int)kernel[0], 1, (int)strides[0], 1, (int)dilations[0], 0, (int)begin[0], 1, (int)outSize[0])
            : new ConvGeometry((int)inputShape[2], (int)inputShape[3], (int)kernel[0], (int)kernel[1], (int)strides[0], (int)strides[1],
                (int)dilations[0], (int)dilations[1], (int)begin[0], (int)begin[1], (int)outSize[0], (int)outSize[1]);
    }

    private static long[] Ones(int n) => Enumerable.Repeat(1L, n).ToArray();
}
