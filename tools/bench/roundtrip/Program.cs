// Load → save round trip of real models (issue 2): the saved file must give bit-identical ONNX Runtime
// outputs on the same seeded inputs. Usage: dotnet run -c Release --project tools/bench/roundtrip -- MODEL.onnx [NAME=D1,D2,...]...
using OnnxSlim.GraphIO;
using OnnxSlim.Runtime;

string path = args[0];
string saved = Path.Combine(Path.GetTempPath(), "roundtrip-" + Path.GetFileName(path));
using (var model = OnnxModel.Load(path)) model.Save(saved);
using var a = new ModelRunner(File.ReadAllBytes(path));
using var b = new ModelRunner(File.ReadAllBytes(saved));
var inputs = InputGenerator.Generate(a.Inputs, InputShapes.Resolve(a.Inputs, args[1..]), seed: 1);
var ra = a.Run(inputs);
var rb = b.Run(inputs);
bool identical = ra.Count == rb.Count && ra.Zip(rb).All(p => p.First.Shape.SequenceEqual(p.Second.Shape) &&
    p.First.AsFloats().AsSpan().SequenceEqual(p.Second.AsFloats()));
Console.WriteLine($"{Path.GetFileName(path)}: saved {new FileInfo(saved).Length} bytes (original {new FileInfo(path).Length}), " +
    $"outputs {(identical ? "bit-identical" : "DIFFER")} ({string.Join(", ", ra.Select(o => o.Name + NamedTensor.FormatShape(o.Shape)))}) -> {saved}");
return identical ? 0 : 1;
