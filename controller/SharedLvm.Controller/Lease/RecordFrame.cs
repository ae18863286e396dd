using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace SharedLvm.Controller.Lease;

/// <summary>
/// How a record is laid into a slot of the lease area: magic, u32 length, SHA-256 of the JSON, the
/// JSON. Anything else reads as no record: never written, or torn (a torn JSON can still parse, as
/// another record, so the hash decides).
/// </summary>
internal static class RecordFrame
{
    private const int HashBytes = 32;

    public static T? Parse<T>(ReadOnlySpan<byte> slot, ReadOnlySpan<byte> magic, JsonTypeInfo<T> type)
        where T : class
    {
        if (!slot.StartsWith(magic))
        {
            return null;
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(slot[magic.Length..]);
        var start = magic.Length + 4 + HashBytes;
        if (length <= 0 || length > slot.Length - start)
        {
            return null;
        }

        var json = slot.Slice(start, length);
        if (!SHA256.HashData(json).AsSpan().SequenceEqual(slot.Slice(magic.Length + 4, HashBytes)))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(json, type);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The bytes <paramref name="record"/> takes in a slot.</summary>
    public static byte[] Serialize<T>(T record, JsonTypeInfo<T> type) => JsonSerializer.SerializeToUtf8Bytes(record, type);

    public static int FramedLength(ReadOnlySpan<byte> magic, int jsonLength) => magic.Length + 4 + HashBytes + jsonLength;

    /// <summary>Frames <paramref name="json"/> at the start of <paramref name="slot"/> (which must hold <see cref="FramedLength"/> bytes); the rest is left as it is.</summary>
    public static void Format(Span<byte> slot, ReadOnlySpan<byte> magic, ReadOnlySpan<byte> json)
    {
        if (FramedLength(magic, json.Length) > slot.Length)
        {
            throw new InvalidOperationException($"A {json.Length}-byte record does not fit its {slot.Length}-byte slot in the lease area.");
        }

        magic.CopyTo(slot);
        BinaryPrimitives.WriteInt32LittleEndian(slot[magic.Length..], json.Length);
        SHA256.HashData(json).CopyTo(slot[(magic.Length + 4)..]);
        json.CopyTo(slot[(magic.Length + 4 + HashBytes)..]);
    }
}
