namespace OnnxSlim.Spectral;

/// <summary>
/// What the reduction is a fraction of. Filters: Σ keeps over non-fixed groups / Σ their widths. Latency: the
/// milliseconds a measured <see cref="LatencyModel"/> predicts.
/// </summary>
public enum BudgetTarget { Macs, Params, Filters, Latency }
