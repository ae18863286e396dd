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
    private readonly IProcessRunner _runner;
    private readonly TimeSpan _timeout;
    private readonly string _binary;

    public LvmMetadataWriter(IProcessRunner runner, LvmConfig config, TimeSpan timeout, string binary = "lvm", Func<CancellationToken, Task>? guard = null)
    {
        _lvm = new LvmCommand(runner, config, timeout, binary);
        _guard = guard;
        _runner = runner;
        _timeout = timeout;
        _binary = binary;

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

    /// <summary>
    /// COW snapshot of an inactive origin. lvm activates the new COW LV alone, zeroes its header and
    /// deactivates it before linking it to the origin (lv_manip.c), so only the new LV may be
    /// activated; the origin stays inactive. Needs device-mapper: without it this fails with
    /// <see cref="LvmErrorKind.NeedsDeviceMapper"/>. A killed lvcreate may leave the COW active here:
    /// it is deactivated on the way out whatever happened.
    /// </summary>
    public async Task LvSnapshotAsync(string vgName, string originLv, string snapshotLv, ulong cowSizeBytes, IEnumerable<string> tags, CancellationToken cancellationToken)
    {
        var here = ActivatingOnly(vgName, snapshotLv);
        try
        {
            await WriteAsync("lvcreate", ["--yes", "-s", "-L", Bytes(cowSizeBytes), "-n", snapshotLv, .. TagArguments("--addtag", tags), vgName + "/" + originLv], cancellationToken, here).ConfigureAwait(false);
        }
        finally
        {
            await DeactivateQuietlyAsync(here, vgName, snapshotLv).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Merges a snapshot back into its inactive origin and removes the snapshot: the origin is
    /// activated here only for the merge. `lvconvert --merge` of an inactive origin only records the
    /// merge ("Conversion starts after activation"); activating the origin starts it in the kernel,
    /// and `lvpoll --polloperation merge` (what lvmpolld runs; `lvconvert --startpoll` takes mirrors
    /// and raids only) waits in the foreground until the data is merged, then commits the
    /// snapshot's removal. A merge that a failure or restart interrupted resumes: lvm refuses a
    /// second --merge, so the snapshot's lv_attr says which step comes next ('S': merging; gone:
    /// done). The poll gets <paramref name="mergeTimeout"/>.
    /// </summary>
    public async Task LvMergeSnapshotAsync(string vgName, string originLv, string snapshotLv, TimeSpan mergeTimeout, CancellationToken cancellationToken)
    {
        string? attributes;
        try
        {
            attributes = (await _lvm.RunAsync("lvs", ["--noheadings", "-o", "lv_attr", vgName + "/" + snapshotLv], cancellationToken).ConfigureAwait(false)).Trim();
        }
        catch (LvmException e) when (e.Kind == LvmErrorKind.NotFound)
        {
            // Merged: only the deactivation below may be left (a retry after it failed).
            attributes = null;
        }

        var here = ActivatingOnly(vgName, originLv);
        if (attributes is not null)
        {
            try
            {
                if (!attributes.StartsWith('S'))
                {
                    await WriteAsync("lvconvert", ["--yes", "--merge", vgName + "/" + snapshotLv], cancellationToken, here).ConfigureAwait(false);
                }

                // --poll n: lvm would otherwise fork a background poller that outlives this command.
                await here.RunAsync("lvchange", ["-ay", "--poll", "n", vgName + "/" + originLv], cancellationToken).ConfigureAwait(false);
                var poll = new LvmCommand(_runner, here.Config, mergeTimeout, _binary);
                await WriteAsync("lvpoll", ["--polloperation", "merge", "--interval", "1", vgName + "/" + originLv], cancellationToken, poll).ConfigureAwait(false);
            }
            catch (Exception)
            {
                await DeactivateQuietlyAsync(here, vgName, originLv).ConfigureAwait(false);
                throw;
            }
        }

        // Not quiet: an origin left active on the controller host could be attached to a node as
        // well (invariant 2), so a restore whose deactivation failed fails, and is retried.
        await here.RunAsync("lvchange", ["-an", vgName + "/" + originLv], CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// Detaches a snapshot's COW store from its origin: it becomes a plain LV holding the origin's
    /// old chunks, which can be wiped like any volume before it is removed (lvconvert(8): "This LV
    /// can be wiped and then destroyed with lvremove"). Metadata only, with the origin inactive.
    /// </summary>
    public Task LvSplitSnapshotAsync(string vgName, string snapshotLv, CancellationToken cancellationToken) =>
        WriteAsync("lvconvert", ["--yes", "--splitsnapshot", vgName + "/" + snapshotLv], cancellationToken);

    /// <summary>Deactivates, on this host, an LV a snapshot verb activated here (after a crash mid-verb).</summary>
    public Task DeactivateHereAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        ActivatingOnly(vgName, lvName).RunAsync("lvchange", ["-an", vgName + "/" + lvName], cancellationToken);

    /// <summary>The writer's lvm with activation on, for exactly one LV of the VG.</summary>
    private LvmCommand ActivatingOnly(string vgName, string lvName) =>
        new(_runner, _lvm.Config with { ActivationEnabled = true, VolumeList = [vgName + "/" + lvName] }, _timeout, _binary);

    /// <summary>Best effort after a failure: the failure is what the caller hears.</summary>
    private static async Task DeactivateQuietlyAsync(LvmCommand lvm, string vgName, string lvName)
    {
        try
        {
            // Not the caller's token: a cancelled request must still leave nothing active here.
            await lvm.RunAsync("lvchange", ["-an", vgName + "/" + lvName], CancellationToken.None).ConfigureAwait(false);
        }
        catch (LvmException)
        {
            // Gone (a failed create): nothing of it is active.
        }
        catch (ProcessTimeoutException)
        {
            // A hung path: the caller's own failure says more.
        }
    }

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
