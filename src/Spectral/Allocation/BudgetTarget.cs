namespace OnnxSlim.Spectral;

/// <summary>
/// What the reduction is a fraction of. Filters: Σ keeps over non-fixed groups / Σ their widths.
/// </summary>
public enum BudgetTarget { Macs, Params, Filters }
