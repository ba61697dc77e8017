namespace OnnxSlim.Runtime;

/// <summary>
/// One output's running sums for an <see cref="OutputComparison"/>: products and norms, largest errors, top-1 matches.
/// Adding a reference's elements in order, whole or batch by batch, gives the same sums.
/// </summary>
/// <param name="perPosition">Whether top-1 is read per position of an output of rank 3 or more, not per sample.</param>
internal sealed class OutputSums(double scale, int classes, bool perPosition)
{
    public double Dot, ReferenceNorm, CandidateNorm, MaxAbs, MaxRel;
    public long Top1Same, Top1Total;

    /// <summary>Classes along the last axis that top-1 agreement reads per row; 0 when it reads none.</summary>
    public int Classes => classes;

    public bool PerPosition => perPosition;

    public void Add(ReadOnlySpan<float> reference, ReadOnlySpan<float> candidate)
    {
        double dot = Dot, nr = ReferenceNorm, nc = CandidateNorm, maxAbs = MaxAbs, maxRel = MaxRel;
        for (int i = 0; i < reference.Length; i++)
        {
            double a = reference[i], b = candidate[i], d = Math.Abs(a - b);
            dot += a * b; nr += a * a; nc += b * b;
            maxAbs = Math.Max(maxAbs, d);
            maxRel = Math.Max(maxRel, d / Math.Max(Math.Abs(a), 1e-3 * scale + 1e-12));
        }
        (Dot, ReferenceNorm, CandidateNorm, MaxAbs, MaxRel) = (dot, nr, nc, maxAbs, maxRel);
        if (classes == 0) return;
        for (int row = 0; row < reference.Length / classes; row++)
        {
            Top1Total++;
            if (OutputComparison.ArgMax(reference.Slice(row * classes, classes)) == OutputComparison.ArgMax(candidate.Slice(row * classes, classes))) Top1Same++;
        }
    }

    /// <summary>The largest magnitude in a reference output: relative errors are read against a thousandth of it at least.</summary>
    public static double Scale(ReadOnlySpan<float> reference)
    {
        double scale = 0;
        foreach (float v in reference) scale = Math.Max(scale, Math.Abs(v));
        return scale;
    }

    public static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (float v in values) if (!float.IsFinite(v)) return false;
        return true;
    }
}
