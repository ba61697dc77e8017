namespace OnnxSlim.GraphIO;

/// <summary>A graph input or output as the model declares it: element type (a <see cref="DataType"/> code, 0 when not
/// declared) and static dims (-1 where dynamic; null when no shape is declared).</summary>
public sealed record GraphValue(string Name, int ElementType, long[]? Dims);
