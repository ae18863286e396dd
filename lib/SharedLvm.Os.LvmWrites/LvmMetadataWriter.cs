using SharedLvm.Os.Processes;
using static SharedLvm.Os.Lvm.LvmCommand;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// The lvm verbs that change a VG's metadata: the single writer's tools (invariant 1). Every LV is
/// created inactive and never auto-activated; the controller's config runs lvm with activation=0.
/// Every verb that changes metadata first awaits the writer's guard: the controller checks there, right
/// before each lvm write, that it still holds the pool's writer lease (invariant 1's one place).
/// </summary>
public sealed class LvmMetadataWriter
{
    private readonly LvmCommand _lvm;
    private readonly LvmCommand _restore;
    private readonly Func<CancellationToken, Task>? _guard;

    public LvmMetadataWriter(IProcessRunner runner, LvmConfig config, TimeSpan timeout, string binary = "lvm", Func<CancellationToken, Task>? guard = null)
    {
        _lvm = new LvmCommand(runner, config, timeout, binary);
        _guard = guard;

        // vgcfgrestore writes no backup or archive whatever the config says (field.md 4); with backup
        // on it would only re-parse the old backup file first. The caller keeps its own copy of each
        // text it restores.
        _restore = new LvmCommand(runner, config.ForReads(), timeout, binary);
    }

    public LvmConfig Config => _lvm.Config;

    public Task PvCreateAsync(string device, ulong metadataSizeBytes, CancellationToken cancellationToken) =>
        WriteAsync("pvcreate", ["--metadatasize", Bytes(metadataSizeBytes), device], cancellationToken);

    public Task VgCreateAsync(string vgName, string device, ulong extentSizeBytes, CancellationToken cancellationToken) =>
        WriteAsync("vgcreate", ["--setautoactivation", "n", "--physicalextentsize", Bytes(extentSizeBytes), vgName, device], cancellationToken);

    /// <summary>
    /// Creates an inactive LV: -an (the controller never activates), -Zn (zeroing needs an active
    /// device), --setautoactivation n (Proxmox bug #4997: hosts auto-activated shared LVs at boot
    /// and a stale dm map blocked a recreated LV).
    /// </summary>
    public Task LvCreateAsync(string vgName, string lvName, ulong sizeBytes, IEnumerable<string> tags, CancellationToken cancellationToken) =>
        WriteAsync("lvcreate", ["-an", "-Zn", "--setautoactivation", "n", "--yes", "-L", Bytes(sizeBytes), "-n", lvName, .. TagArguments("--addtag", tags), vgName], cancellationToken);

    /// <summary>COW snapshot. LVM needs device-mapper for this even with -an: on a host without it
    /// this fails with <see cref="LvmErrorKind.NeedsDeviceMapper"/>.</summary>
    public Task LvSnapshotAsync(string vgName, string originLv, string snapshotLv, ulong cowSizeBytes, IEnumerable<string> tags, CancellationToken cancellationToken) =>
        WriteAsync("lvcreate", ["-an", "--yes", "-s", "-L", Bytes(cowSizeBytes), "-n", snapshotLv, .. TagArguments("--addtag", tags), vgName + "/" + originLv], cancellationToken);

    public Task LvRemoveAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        WriteAsync("lvremove", ["--yes", vgName + "/" + lvName], cancellationToken);

    /// <summary>
    /// Removes several LVs in one metadata commit (seqno + 1 for any number: field.md 4). If one named
    /// LV is missing lvm exits 5 but still removes the others; the caller settles each LV.
    /// </summary>
    public Task LvRemoveManyAsync(string vgName, IReadOnlyCollection<string> lvNames, CancellationToken cancellationToken) =>
        WriteAsync("lvremove", ["--yes", .. lvNames.Select(n => vgName + "/" + n)], cancellationToken);

    /// <summary>
    /// Replaces the VG's metadata with the text in <paramref name="file"/>: one atomic commit (34 SIGKILLs
    /// in the field: always the old or the new version, vgck clean). It checks far less than lvcreate:
    /// callers must pass the text through <see cref="MetadataInvariants.Check"/> first.
    /// </summary>
    public Task VgCfgRestoreAsync(string vgName, string file, CancellationToken cancellationToken) =>
        WriteAsync("vgcfgrestore", ["-f", file, vgName], cancellationToken, _restore);

    public Task LvExtendAsync(string vgName, string lvName, ulong sizeBytes, CancellationToken cancellationToken) =>
        WriteAsync("lvextend", ["-L", Bytes(sizeBytes), vgName + "/" + lvName], cancellationToken);

    public Task LvChangeTagsAsync(string vgName, string lvName, IEnumerable<string> add, IEnumerable<string> remove, CancellationToken cancellationToken) =>
        WriteAsync("lvchange", [.. TagArguments("--addtag", add), .. TagArguments("--deltag", remove), vgName + "/" + lvName], cancellationToken);

    public Task VgCheckAsync(string vgName, CancellationToken cancellationToken) =>
        _lvm.RunAsync("vgck", [vgName], cancellationToken);

    private async Task WriteAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken, LvmCommand? lvm = null)
    {
        if (_guard is not null)
        {
            await _guard(cancellationToken).ConfigureAwait(false);
        }

        await (lvm ?? _lvm).RunAsync(command, arguments, cancellationToken).ConfigureAwait(false);
    }
}
