using System.Security.Cryptography;

namespace SharedLvm.Contracts.Conventions;

/// <summary>
/// Controller-issued volume ids: 26 characters of lowercase RFC 4648 base32 (128 random bits). The id
/// names the LV ("slvm-&lt;id&gt;"), so retries and a rebuilt catalogue agree on identity, and an agent
/// can tell SharedLvm's LVs from the node's own by name alone.
/// </summary>
public static class VolumeId
{
    public const int Length = 26;
    public const string LvPrefix = "slvm-";
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    public static string New()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        Span<char> chars = stackalloc char[Length];
        int buffer = 0, bits = 0, index = 0;
        foreach (var b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                chars[index++] = Alphabet[(buffer >> (bits - 5)) & 31];
                bits -= 5;
            }
        }

        chars[index] = Alphabet[(buffer << (5 - bits)) & 31];
        return new string(chars);
    }

    public static bool IsValid(string? id) =>
        id is { Length: Length } && id.All(c => Alphabet.Contains(c, StringComparison.Ordinal));

    public static string LvName(string id) => LvPrefix + id;

    /// <summary>The volume id an LV name carries, or null for an LV that is not a SharedLvm volume.</summary>
    public static string? FromLvName(string lvName) =>
        lvName.StartsWith(LvPrefix, StringComparison.Ordinal) && IsValid(lvName[LvPrefix.Length..]) ? lvName[LvPrefix.Length..] : null;

    public static bool IsVolumeLv(string lvName) => FromLvName(lvName) is not null;
}
