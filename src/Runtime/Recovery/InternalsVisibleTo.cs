using System.Runtime.CompilerServices;

// The solver, sampler and row readers are internal; their tests live in tests/OnnxSlim.Recovery.Tests.
[assembly: InternalsVisibleTo("OnnxSlim.Recovery.Tests")]
