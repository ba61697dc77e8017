namespace OnnxSlim.Spectral;

/// <summary>
/// One channel group as the configuration sees it. <paramref name="Fixed"/>: frozen or ignored, keeps
/// its whole width. <paramref name="Spectrum"/> may be null only for fixed groups (and for uniform allocation).
/// <paramref name="RoundTo"/>: this group's keep is a multiple of it (0: the solver's roundTo applies).
/// </summary>
public sealed record PlanningGroup(int Width, FilterSpectrum? Spectrum, int MinKeep, bool Fixed, int RoundTo = 0);
