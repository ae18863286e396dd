using System.Globalization;

namespace SharedLvm.Cli;

/// <summary>Human sizes: bytes, or a number with K, M, G, T (binary: 1 G = 1024 M), optional "iB"/"B".</summary>
internal static class Sizes
{
    private static readonly (string Suffix, ulong Factor)[] Units =
    [
        ("T", 1UL << 40), ("G", 1UL << 30), ("M", 1UL << 20), ("K", 1UL << 10),
    ];

    public static ulong Parse(string text)
    {
        var trimmed = text.Trim().ToUpperInvariant().Replace("IB", string.Empty, StringComparison.Ordinal).TrimEnd('B');
        foreach (var (suffix, factor) in Units)
        {
            if (trimmed.EndsWith(suffix, StringComparison.Ordinal)
                && decimal.TryParse(trimmed[..^1], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount) && amount > 0)
            {
                return (ulong)Math.Ceiling(amount * factor);
            }
        }

        return ulong.TryParse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)
            ? bytes
            : throw new FormatException($"'{text}' is not a size (e.g. 10G, 512M, 1.5T, or bytes).");
    }

    public static string Format(ulong bytes)
    {
        foreach (var (suffix, factor) in Units)
        {
            if (bytes >= factor)
            {
                return (bytes / (double)factor).ToString("0.##", CultureInfo.InvariantCulture) + suffix + "iB";
            }
        }

        return bytes.ToString(CultureInfo.InvariantCulture) + "B";
    }
}
