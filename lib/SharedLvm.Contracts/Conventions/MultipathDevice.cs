namespace SharedLvm.Contracts.Conventions;

/// <summary>
/// Devices by WWID, never by sdX: every node and the controller host run multipathd with
/// user_friendly_names no, so a LU's map is /dev/mapper/&lt;WWID&gt; on every host (an sdX name, or an
/// mpathN alias, differs per host and per boot). The agent opens maps by this path and the
/// controller derives a pool's WWID from it, so both use this one rule.
/// </summary>
public static class MultipathDevice
{
    private const string Prefix = "/dev/mapper/";

    public static string PathOf(string wwid) => Prefix + wwid;

    /// <summary>The WWID a /dev/mapper/&lt;WWID&gt; path names, or empty for any other device (a loop device, say).</summary>
    public static string WwidOf(string devicePath) =>
        devicePath.StartsWith(Prefix, StringComparison.Ordinal) ? devicePath[Prefix.Length..] : string.Empty;
}
