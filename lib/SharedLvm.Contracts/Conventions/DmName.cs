namespace SharedLvm.Contracts.Conventions;

/// <summary>
/// Device-mapper names of LVs as LVM makes them: "vg-lv", with every '-' inside either name doubled
/// (VG "pool-1", LV "slvm-x" -> "pool--1-slvm--x"). The agent reports active LVs by these names and
/// the controller compares them across nodes, so both decode them here.
/// </summary>
public static class DmName
{
    public static string Of(string vgName, string lvName) =>
        vgName.Replace("-", "--", StringComparison.Ordinal) + "-" + lvName.Replace("-", "--", StringComparison.Ordinal);

    /// <summary>Splits a dm name into VG and LV, or null when it is not an LV's (a multipath map, say).</summary>
    public static (string Vg, string Lv)? Split(string dmName)
    {
        for (var i = 1; i < dmName.Length - 1; i++)
        {
            if (dmName[i] == '-' && dmName[i - 1] != '-' && dmName[i + 1] != '-')
            {
                return (dmName[..i].Replace("--", "-", StringComparison.Ordinal), dmName[(i + 1)..].Replace("--", "-", StringComparison.Ordinal));
            }
        }

        return null;
    }

    /// <summary>"vg/lv", the form heartbeats and alarms name an LV by.</summary>
    public static string? ToVgLv(string dmName) => Split(dmName) is var (vg, lv) ? vg + "/" + lv : null;
}
