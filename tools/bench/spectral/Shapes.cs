using OnnxSlim.Spectral;

namespace OnnxSlim.Spectral.Bench;

/// <summary>A channel group: Rows channels, each a stacked filter of Cols weights.</summary>
internal sealed record GroupShape(string Name, int Rows, int Cols);

internal sealed record ModelShape(List<GroupShape> Groups, List<CostTerm> Macs, List<CostTerm> Params);

/// <summary>
/// Channel groups of torchvision models as the rewriter forms them: a group stacks, per channel, the
/// unfoldings of every conv producing it (ResNet: a stage's conv3s and its downsample share one group).
/// </summary>
internal static class Shapes
{
    private sealed class Builder
    {
        public readonly List<GroupShape> Groups = new();
        public readonly List<CostTerm> Macs = new();
        public readonly List<CostTerm> Params = new();
        private readonly Dictionary<int, int> _cols = new();

        public int Group(string name, int rows) { Groups.Add(new GroupShape(name, rows, 0)); return Groups.Count - 1; }

        /// <summary>A conv into group g (−1: fixed output) from group input (−1: a fixed tensor with inChannels).</summary>
        public void Conv(int g, int input, int inChannels, int k, int outHw, int groups = 1)
        {
            int perGroupIn = inChannels / groups;
            if (g >= 0) _cols[g] = _cols.GetValueOrDefault(g) + perGroupIn * k * k;
            double kk = (double)k * k;
            if (groups == inChannels && g == input) { Macs.Add(new CostTerm(g, g, kk * outHw)); Params.Add(new CostTerm(g, g, kk)); return; }
            Macs.Add(new CostTerm(g, input, kk * outHw * (input >= 0 ? 1 : inChannels)));
            Params.Add(new CostTerm(g, input, kk * (input >= 0 ? 1 : inChannels)));
        }

        public ModelShape Build()
        {
            var gs = Groups.Select((g, i) => g with { Cols = _cols[i] }).ToList();
            return new ModelShape(gs, Macs, Params);
        }
    }

    public static ModelShape ResNet50() => Backbone(new Builder(), out _, out _).Build();

    private static Builder Backbone(Builder b, out int[] stageGroups, out int[] stageHw)
    {
        int stem = b.Group("conv1", 64);
        b.Conv(stem, -1, 3, 7, 112 * 112);
        int input = stem, inCh = 64, hwIn = 56 * 56;
        (int mid, int outCh, int blocks, int hw)[] stages = [(64, 256, 3, 56), (128, 512, 4, 28), (256, 1024, 6, 14), (512, 2048, 3, 7)];
        stageGroups = new int[4];
        stageHw = new int[4];
        for (int s = 0; s < stages.Length; s++)
        {
            var (mid, outCh, blocks, hw) = stages[s];
            int res = b.Group($"layer{s + 1}.out", outCh);
            for (int blk = 0; blk < blocks; blk++)
            {
                int c1 = b.Group($"layer{s + 1}.{blk}.conv1", mid);
                int c2 = b.Group($"layer{s + 1}.{blk}.conv2", mid);
                int blockIn = blk == 0 ? input : res, blockInCh = blk == 0 ? inCh : outCh;
                b.Conv(c1, blockIn, blockInCh, 1, blk == 0 ? hwIn : hw * hw);
                b.Conv(c2, c1, mid, 3, hw * hw);
                b.Conv(res, c2, mid, 1, hw * hw);
                if (blk == 0) b.Conv(res, input, inCh, 1, hw * hw); // downsample adds into the same tensor
            }
            input = res; inCh = outCh; hwIn = hw * hw;
            stageGroups[s] = res; stageHw[s] = hw;
        }
        return b;
    }

    /// <summary>ResNet-50 classifier: backbone plus the 1000-way Gemm on the last stage.</summary>
    private static Builder WithClassifier(Builder b)
    {
        Backbone(b, out var stages, out _);
        b.Conv(-1, stages[3], 2048, 1, 1);
        return b;
    }

    public static ModelShape ResNet50Classifier() => WithClassifier(new Builder()).Build();

    /// <summary>
    /// FasterRCNN-R50-FPN at 480×640: the backbone, the FPN (lateral 1×1 convs add into one 256-channel
    /// group through the top-down path; the 3×3 output convs feed the shared RPN conv, so they form one
    /// group too), the RPN conv, and the box head's two fully connected layers (1024 × 256·7·7, 1024 × 1024).
    /// </summary>
    public static ModelShape FasterRcnnR50Fpn()
    {
        var b = new Builder();
        Backbone(b, out var stages, out var hw);
        // 480×640 input: scale the 224² spatial sizes (MACs only; shapes are what matter for the timing)
        int lateral = b.Group("fpn.inner", 256);
        int outputs = b.Group("fpn.layer", 256);
        int[] chans = [256, 512, 1024, 2048];
        for (int s = 0; s < 4; s++)
        {
            int h = (int)(hw[s] * hw[s] * (480.0 * 640) / (224 * 224));
            b.Conv(lateral, stages[s], chans[s], 1, h);
            b.Conv(outputs, lateral, 256, 3, h);
        }
        int rpn = b.Group("rpn.conv", 256);
        b.Conv(rpn, outputs, 256, 3, 60 * 80 + 30 * 40 + 15 * 20 + 8 * 10 + 4 * 5);
        b.Conv(-1, rpn, 256, 1, 15 * 6300 / 5);                // cls + bbox 1×1 heads (fixed outputs)
        int fc6 = b.Group("roi.fc6", 1024);
        b.Conv(fc6, outputs, 256, 7, 1000);                      // 1000 proposals through a 7×7 "conv"
        int fc7 = b.Group("roi.fc7", 1024);
        b.Conv(fc7, fc6, 1024, 1, 1000);
        b.Conv(-1, fc7, 1024, 1, 1000 * 91 * 5);
        return b.Build();
    }
}
