namespace OnnxSlim.GraphIO;

/// <summary>The file is not a model this tool can read; the message is one line, fit for a user.</summary>
public sealed class ModelFormatException(string message, Exception? inner = null) : Exception(message, inner);
