namespace SharedLvm.Agent.Discovery;

/// <summary>
/// SCSI WWIDs in the form multipath names its maps (user_friendly_names no): udev's ID_SERIAL,
/// which for an NAA designator is "3" + the NAA hex (sysfs: "naa.5000c500a0000001" ->
/// "35000c500a0000001"), "2" + EUI-64, "8" + SCSI name string.
/// </summary>
public static class Wwid
{
    public static string? FromSysfs(string? raw)
    {
        if (string.IsNullOrWhiteSpace(raw))
        {
            return null;
        }

        var value = raw.Trim();
        if (value.StartsWith("naa.", StringComparison.OrdinalIgnoreCase))
        {
            return "3" + value[4..].ToLowerInvariant();
        }

        if (value.StartsWith("eui.", StringComparison.OrdinalIgnoreCase))
        {
            return "2" + value[4..].ToLowerInvariant();
        }

        if (value.StartsWith("iqn.", StringComparison.OrdinalIgnoreCase) || value.StartsWith("name.", StringComparison.OrdinalIgnoreCase))
        {
            return "8" + value;
        }

        // t10 vendor identifiers: udev joins the words with '_'.
        if (value.StartsWith("t10.", StringComparison.OrdinalIgnoreCase))
        {
            return "1" + string.Join('_', value[4..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }

        return value;
    }

    /// <summary>Plausible WWID text (what a request may name): letters, digits and . _ : -, 1-128 characters.</summary>
    public static bool IsValidText(string text) =>
        text.Length is > 0 and <= 128 && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '-');

    /// <summary>A WWID from a dm-multipath uuid ("mpath-&lt;wwid&gt;"), or null for other dm devices.</summary>
    public static string? FromMultipathUuid(string? uuid) =>
        uuid is not null && uuid.StartsWith("mpath-", StringComparison.Ordinal) ? uuid["mpath-".Length..] : null;
}
