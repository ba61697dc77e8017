namespace OnnxSlim.Pruning;

/// <summary>The model or the plan cannot be pruned as asked: nothing prunable, a plan for another model, an ignore pattern matching nothing.</summary>
public sealed class PruningException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The pruned model does not run on ONNX Runtime, or its outputs are not finite.</summary>
public sealed class ValidationFailedException(string message, Exception? inner = null) : Exception(message, inner);
