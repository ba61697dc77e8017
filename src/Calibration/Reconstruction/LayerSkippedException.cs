namespace OnnxSlim.Calibration;

/// <summary>A layer that cannot be re-fitted; the message is the reason shown in the report. Never escapes <see cref="Reconstruction"/>.</summary>
internal sealed class LayerSkippedException(string reason) : Exception(reason);
