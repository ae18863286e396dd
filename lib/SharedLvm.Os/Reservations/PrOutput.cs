using System.Globalization;
using System.Text.RegularExpressions;

namespace SharedLvm.Os.Reservations;

/// <summary>PERSISTENT RESERVE OUT/IN reservation types (SPC-4 table "Persistent reservation type codes").</summary>
public enum PrType
{
    None = 0,
    WriteExclusive = 1,
    ExclusiveAccess = 3,
    WriteExclusiveRegistrantsOnly = 5,
    ExclusiveAccessRegistrantsOnly = 6,
    WriteExclusiveAllRegistrants = 7,
    ExclusiveAccessAllRegistrants = 8,
}

/// <summary>
/// READ KEYS: every registration, one key per I_T nexus. mpathpersist asks one path and prints what
/// the target answers, so a node registered on both paths of a map appears twice: the count of its
/// key is how many of its paths are registered.
/// </summary>
public sealed record RegisteredKeys(uint Generation, IReadOnlyList<ReservationKey> Keys)
{
    public int Registrations(ReservationKey key) => Keys.Count(k => k == key);

    public bool Contains(ReservationKey key) => Keys.Contains(key);

    public IReadOnlyList<ReservationKey> Distinct() => Keys.Distinct().ToArray();
}

/// <summary>READ RESERVATION: the holder's key and the type, or no reservation (Holder null).</summary>
public sealed record ReservationState(uint Generation, ReservationKey? Holder, PrType Type)
{
    public bool Held => Holder is not null;
}

/// <summary>The raw rows as printed, before any interpretation.</summary>
internal sealed record RawKeysRow(string Generation, IReadOnlyList<string> Keys);

internal sealed record RawReservationRow(string Generation, string? Key, string? Scope, string? Type);

/// <summary>
/// Parses what `mpathpersist --in -k|-r` (multipath-tools 0.9.4, mpathpersist/main.c
/// mpath_print_buf_readkeys/readresv) and `sg_persist --in -k|-r` (sg3-utils 1.46) print. The two
/// differ in spacing and separators ("Key = 0x.." / "Key=0x..", "type = ..." / "type: ...") and in
/// what they say when there is nothing ("0 registered reservation key." / "there are NO registered
/// reservation keys"); sg_persist also prints the INQUIRY identification first. Output without a
/// "PR generation=" line is not understood and throws: a fencing decision must never rest on a guess.
/// </summary>
public static partial class PrOutput
{
    public static RegisteredKeys ParseKeys(string output) => ToDomain(ParseKeysRaw(output));

    public static ReservationState ParseReservation(string output) => ToDomain(ParseReservationRaw(output));

    internal static RawKeysRow ParseKeysRaw(string output)
    {
        var lines = Lines(output);
        var header = HeaderIndex(lines, output);
        var keys = lines.Skip(header + 1).Select(l => KeyLine().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToArray();
        return new RawKeysRow(Generation().Match(lines[header]).Groups[1].Value, keys);
    }

    internal static RawReservationRow ParseReservationRaw(string output)
    {
        var lines = Lines(output);
        var header = HeaderIndex(lines, output);
        var generation = Generation().Match(lines[header]).Groups[1].Value;
        if (lines[header].Contains("NO reservation", StringComparison.OrdinalIgnoreCase))
        {
            return new RawReservationRow(generation, null, null, null);
        }

        string? key = null, scope = null, type = null;
        foreach (var line in lines.Skip(header + 1))
        {
            if (HolderKey().Match(line) is { Success: true } k)
            {
                key = k.Groups[1].Value;
            }

            if (ScopeAndType().Match(line) is { Success: true } s)
            {
                scope = s.Groups[1].Value.Trim();
                type = s.Groups[2].Value.Trim();
            }
        }

        return new RawReservationRow(generation, key, scope, type);
    }

    private static RegisteredKeys ToDomain(RawKeysRow row) =>
        new(ParseGeneration(row.Generation), row.Keys.Select(ReservationKey.Parse).ToArray());

    private static ReservationState ToDomain(RawReservationRow row)
    {
        if (row.Key is null)
        {
            return new ReservationState(ParseGeneration(row.Generation), null, PrType.None);
        }

        return new ReservationState(ParseGeneration(row.Generation), ReservationKey.Parse(row.Key), TypeOf(row.Type ?? string.Empty));
    }

    /// <summary>The names both tools print (mpathpersist's pr_type_strs, sg_persist's pr_type_strs), by code.</summary>
    internal static PrType TypeOf(string text) => text.Trim().ToLowerInvariant() switch
    {
        "write exclusive" => PrType.WriteExclusive,
        "exclusive access" => PrType.ExclusiveAccess,
        "write exclusive, registrants only" => PrType.WriteExclusiveRegistrantsOnly,
        "exclusive access, registrants only" => PrType.ExclusiveAccessRegistrantsOnly,
        "write exclusive, all registrants" => PrType.WriteExclusiveAllRegistrants,
        "exclusive access, all registrants" => PrType.ExclusiveAccessAllRegistrants,
        _ => throw new FormatException($"Unknown persistent reservation type '{text}'."),
    };

    private static string[] Lines(string output) => output.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();

    private static int HeaderIndex(string[] lines, string output)
    {
        var index = Array.FindIndex(lines, l => Generation().IsMatch(l));
        return index >= 0 ? index : throw new FormatException($"No 'PR generation=' line in: {output.Trim()}");
    }

    private static uint ParseGeneration(string hex) => uint.Parse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"PR generation=0x([0-9a-fA-F]+)")]
    private static partial Regex Generation();

    [GeneratedRegex(@"^\s*(0x[0-9a-fA-F]+)\s*$")]
    private static partial Regex KeyLine();

    [GeneratedRegex(@"^\s*Key\s*=\s*(0x[0-9a-fA-F]+)\s*$")]
    private static partial Regex HolderKey();

    [GeneratedRegex(@"^\s*scope\s*[:=]\s*([^,]+),\s*type\s*[:=]\s*(.+?)\s*$")]
    private static partial Regex ScopeAndType();
}
