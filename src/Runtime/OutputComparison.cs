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
        var sums = new List<OutputSums>();
        bool finite = true;
        var notCompared = new List<string>();
        foreach (var r in reference)
        {
            var c = candidate.FirstOrDefault(o => o.Name == r.Name);
            var cv = c?.AsFloats();
            if (cv is not null) finite &= OutputSums.AllFinite(cv);
            if (WhyNotCompared(r, c?.Shape) is { } why) { notCompared.Add(why); continue; }
            var rv = r.AsFloats();
            var s = SumsFor(r, rv, top1, classAxes);
            s.Add(rv, cv);
            sums.Add(s);
        }
        return From(sums, finite, notCompared);
    }

    /// <summary>Why <paramref name="reference"/> cannot be compared with a candidate of <paramref name="candidateShape"/> (null: missing); null when it can.</summary>
    internal static string? WhyNotCompared(NamedTensor reference, long[]? candidateShape) =>
        candidateShape is null ? $"'{reference.Name}' (missing)"
        : !reference.Shape.SequenceEqual(candidateShape) ? $"'{reference.Name}' ({NamedTensor.FormatShape(reference.Shape)} vs {NamedTensor.FormatShape(candidateShape)})"
        : reference.Data.Length == 0 ? $"'{reference.Name}' (empty in both)"
        : null;

    /// <summary>Empty sums for reference output <paramref name="r"/> (its values <paramref name="rv"/>), reading top-1 where it holds classes.</summary>
    internal static OutputSums SumsFor(NamedTensor r, float[] rv, bool top1, IReadOnlyDictionary<string, long>? classAxes)
    {
        int classes = top1 && NamedTensor.IsFloating(r.ElementType) && HoldsClasses(r, classAxes) ? (int)r.Shape[^1] : 0;
        return new OutputSums(OutputSums.Scale(rv), classes, perPosition: classes > 0 && r.Shape.Length > 2);
    }

    /// <summary>The figures of the outputs compared, their sums added in the reference's order.</summary>
    internal static OutputComparison From(IReadOnlyList<OutputSums> sums, bool finite, List<string> notCompared)
    {
        double dot = 0, nr = 0, nc = 0, maxAbs = 0, maxRel = 0;
        long top1Same = 0, top1Total = 0;
        foreach (var s in sums)
        {
            dot += s.Dot; nr += s.ReferenceNorm; nc += s.CandidateNorm;
            maxAbs = Math.Max(maxAbs, s.MaxAbs);
            maxRel = Math.Max(maxRel, s.MaxRel);
            top1Same += s.Top1Same; top1Total += s.Top1Total;
        }
        double cosine = nr == 0 && nc == 0 ? 1 : dot / Math.Sqrt(nr * nc + 1e-300);
        return new OutputComparison(cosine, maxAbs, maxRel, top1Total > 0 ? (double)top1Same / top1Total : null, finite, sums.Count, notCompared)
        {
            Top1PerPosition = sums.Any(s => s.PerPosition),
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
