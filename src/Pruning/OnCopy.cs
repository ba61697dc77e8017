using OnnxSlim.GraphIO;

namespace OnnxSlim.Pruning;

/// <summary>
/// Work on a model as it is now, done on another thread while the caller goes on editing the model: the copy is taken
/// before this returns, so nothing the caller does next reaches it (the reconstruction writes weights in place).
/// </summary>
internal static class OnCopy
{
    /// <summary>Runs <paramref name="body"/> on a deep copy of <paramref name="model"/>, which is disposed when it returns.</summary>
    public static Task<T> Run<T>(OnnxModel model, Func<OnnxModel, T> body)
    {
        var copy = model.Clone();
        return Task.Run(() =>
        {
            using (copy) return body(copy);
        });
    }
}
