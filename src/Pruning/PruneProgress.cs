namespace OnnxSlim.Pruning;

/// <summary>
/// Where a prune run is: stage <see cref="Stage"/> has done <see cref="Done"/> of <see cref="Total"/> steps (layers,
/// groups) in <see cref="Elapsed"/>. A stage reports (0, 0) when it starts and <see cref="Finished"/> when it ends.
/// </summary>
public sealed record PruneProgress(string Stage, int Done, int Total, TimeSpan Elapsed, bool Finished);
