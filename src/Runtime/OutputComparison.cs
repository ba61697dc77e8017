namespace OnnxSlim.Runtime;

/// <summary>How closely one model's outputs follow another's on the same inputs.</summary>
/// <param name="Compared">Outputs compared; the figures describe these only (cosine 1 and errors 0 when none was).</param>
/// <param name="NotCompared">The reference's other outputs, each with why: missing, empty in both, or of another shape (reference vs candidate: a detector's boxes after NMS).</param>
public sealed record OutputComparison(double Cosine, double MaxAbsError, double MaxRelError, double? Top1Agreement, bool AllFinite, int Compared,
    IReadOnlyList<string> NotCompared)
{
    /// <summary>Whether <see cref="Top1Agreement"/> counts positions (an output of rank 3 or more) rather than samples alone.</summary>
    public bool Top1PerPosition { get; init; }

    /// <summary>
    /// Compares the outputs that both models produce with the same shape; classifier-shaped [N, K] outputs also get top-1
    /// agreement, and so do outputs of higher rank that <paramref name="classAxes"/> names with their last axis (per position:
    /// a recognizer's [N, T, classes] agrees at each of its N·T steps or not).
    /// </summary>
    /// <param name="top1">Whether to read top-1 agreement (not for intermediate values compared instead of the outputs).</param>
    /// <param name="classAxes">Outputs whose scores a Softmax normalises, with its axis (<see cref="ClassAxes.Find"/>).</param>
    public static OutputComparison Compare(IReadOnlyList<NamedTensor> reference, IReadOnlyList<NamedTensor> candidate, bool top1 = true,
        IReadOnlyDictionary<string, long>? classAxes = null)
    {
        double dot = 0, nr = 0, nc = 0, maxAbs = 0, maxRel = 0;
        long top1Same = 0, top1Total = 0;
        bool perPosition = false;
        bool finite = true;
        int compared = 0;
        var notCompared = new List<string>();
        foreach (var r in reference)
        {
            var c = candidate.FirstOrDefault(o => o.Name == r.Name);
            if (c is null) { notCompared.Add($"'{r.Name}' (missing)"); continue; }
            var cv = c.AsFloats();
            foreach (float v in cv) if (!float.IsFinite(v)) { finite = false; break; }
            if (!r.Shape.SequenceEqual(c.Shape))
            {
                notCompared.Add($"'{r.Name}' ({NamedTensor.FormatShape(r.Shape)} vs {NamedTensor.FormatShape(c.Shape)})");
                continue;
            }
            if (r.Data.Length == 0) { notCompared.Add($"'{r.Name}' (empty in both)"); continue; }
            var rv = r.AsFloats();
            compared++;
            double scale = 0;
            foreach (float v in rv) scale = Math.Max(scale, Math.Abs(v));
            for (int i = 0; i < rv.Length; i++)
            {
                double a = rv[i], b = cv[i], d = Math.Abs(a - b);
                dot += a * b; nr += a * a; nc += b * b;
                maxAbs = Math.Max(maxAbs, d);
                maxRel = Math.Max(maxRel, d / Math.Max(Math.Abs(a), 1e-3 * scale + 1e-12));
            }
            if (top1 && NamedTensor.IsFloating(r.ElementType) && HoldsClasses(r, classAxes))
            {
                int k = (int)r.Shape[^1];
                perPosition |= r.Shape.Length > 2;
                for (int row = 0; row < rv.Length / k; row++)
                {
                    top1Total++;
                    if (ArgMax(rv.AsSpan(row * k, k)) == ArgMax(cv.AsSpan(row * k, k))) top1Same++;
                }
            }
        }
        double cosine = nr == 0 && nc == 0 ? 1 : dot / Math.Sqrt(nr * nc + 1e-300);
        return new OutputComparison(cosine, maxAbs, maxRel, top1Total > 0 ? (double)top1Same / top1Total : null, finite, compared, notCompared)
        {
            Top1PerPosition = perPosition,
        };
    }

    /// <summary>Whether the last axis of <paramref name="r"/> holds more than one class score: [N, K], or an output named in <paramref name="classAxes"/> with its last axis.</summary>
    private static bool HoldsClasses(NamedTensor r, IReadOnlyDictionary<string, long>? classAxes)
    {
        if (r.Shape.Length < 2 || r.Shape[^1] <= 1) return false;
        if (r.Shape.Length == 2) return true;
        return classAxes is not null && classAxes.TryGetValue(r.Name, out long axis) && ClassAxes.IsLast(axis, r.Shape.Length);
    }

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    public bool IsExact(double relTolerance) => AllFinite && Compared > 0 && MaxRelError <= relTolerance;
}
