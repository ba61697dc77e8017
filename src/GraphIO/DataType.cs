namespace OnnxSlim.GraphIO;

/// <summary>ONNX TensorProto.DataType codes that onnxslim reads or writes.</summary>
public static class DataType
{
    public const int Float = 1;
    public const int UInt8 = 2;
    public const int Int8 = 3;
    public const int Int32 = 6;
    public const int Int64 = 7;
    public const int Float16 = 10;
    public const int Double = 11;
    public const int BFloat16 = 16;

    public static bool IsFloating(int t) => t is Float or Float16 or Double or BFloat16;

    public static int ElementSize(int t) => t switch
    {
        Float or Int32 => 4,
        Int64 or Double => 8,
        Float16 or BFloat16 => 2,
        UInt8 or Int8 => 1,
        _ => throw new ArgumentException($"unsupported tensor data type {t}", nameof(t)),
    };

    public static string Name(int t) => t switch
    {
        Float => "float32", UInt8 => "uint8", Int8 => "int8", Int32 => "int32", Int64 => "int64",
        Float16 => "float16", Double => "float64", BFloat16 => "bfloat16", 9 => "bool", 8 => "string",
        _ => $"type{t}",
    };
}
