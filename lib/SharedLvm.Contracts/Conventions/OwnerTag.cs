namespace SharedLvm.Contracts.Conventions;

/// <summary>
/// The LVM tag that says which node may activate an LV. The controller adds it before it asks a node
/// to activate; each agent runs lvm with activation/volume_list = ["@sharedlvm_owner_&lt;node&gt;"], so
/// LVM itself refuses an LV that is not tagged for the node (HA-LVM tagging, Pacemaker LVM-activate).
/// Both sides read this one definition.
/// </summary>
public static class OwnerTag
{
    public const string Prefix = "sharedlvm_owner_";

    /// <summary>
    /// The holders asked for multi-attach (a live migration): the controller sets it with the first
    /// holder's owner tag when that attach asked for sharing and clears it with the last; the agent
    /// reports an LV carrying it as shared.
    /// </summary>
    public const string Shared = "slvm_multi";

    public static string For(string node) => Prefix + node;

    /// <summary>The activation/volume_list entry that admits exactly the LVs tagged for <paramref name="node"/>.</summary>
    public static string VolumeListEntry(string node) => "@" + For(node);

    public static bool IsShared(IEnumerable<string> tags) => tags.Contains(Shared, StringComparer.Ordinal);

    /// <summary>The nodes an LV is tagged for.</summary>
    public static IReadOnlyList<string> Owners(IEnumerable<string> tags) =>
        tags.Where(t => t.StartsWith(Prefix, StringComparison.Ordinal)).Select(t => t[Prefix.Length..]).ToArray();
}
