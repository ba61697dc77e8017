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

    public const int String = 8;
    public const int Bool = 9;

    /// <summary>The highest TensorProto.DataType code ONNX defines (FLOAT4E2M1).</summary>
    public const int LastDefined = 23;

    public static bool IsDefined(int t) => t is >= 1 and <= LastDefined;

    /// <summary>Bytes that <paramref name="count"/> elements take in raw_data or external data; null for strings (no fixed size).</summary>
    public static long? StorageBytes(int t, long count) => t switch
    {
        String => null,
        21 or 22 or 23 => (count + 1) / 2, // uint4, int4, float4e2m1: two per byte
        1 or 6 or 12 => checked(count * 4), // float, int32, uint32
        7 or 11 or 13 or 14 => checked(count * 8), // int64, double, uint64, complex64
        15 => checked(count * 16), // complex128
        4 or 5 or 10 or 16 => checked(count * 2), // uint16, int16, float16, bfloat16
        _ => count, // uint8, int8, bool, float8 variants
    };

    public static string Name(int t) => t switch
    {
        Float => "float32", UInt8 => "uint8", Int8 => "int8", Int32 => "int32", Int64 => "int64",
        Float16 => "float16", Double => "float64", BFloat16 => "bfloat16", 9 => "bool", 8 => "string",
        _ => $"type{t}",
    };
}
