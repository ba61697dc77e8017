namespace OnnxSlim.Spectral;

/// <summary>
/// One channel group as the configuration sees it. <paramref name="Fixed"/>: frozen or ignored, keeps
/// its whole width. <paramref name="Spectrum"/> may be null only for fixed groups (and for uniform allocation).
/// <paramref name="RoundTo"/>: this group's keep is a multiple of it (0: the solver's roundTo applies).
/// <paramref name="Weight"/> multiplies the group's normalised spectrum before the global threshold: above 1 the
/// group is pruned less, below 1 more (1: plain SLIMING).
/// </summary>
public sealed record PlanningGroup(int Width, FilterSpectrum? Spectrum, int MinKeep, bool Fixed, int RoundTo = 0, double Weight = 1);
