namespace OnnxSlim.Calibration;

/// <summary>EXPERIMENT (ONNXSLIM_X_CTCW): per calibration image and output step, a weight for the rows of the re-fits whose
/// maps' last axis runs along the output steps (a CTC recogniser's time axis); null: unweighted.</summary>
public static class ExperimentHooks
{
    public static float[]? StepWeights;
    public static int Steps;
}
