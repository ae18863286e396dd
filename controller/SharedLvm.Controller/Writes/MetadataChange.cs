using SharedLvm.Controller.Catalog;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Controller.Writes;

/// <summary>
/// One change to a VG's metadata, described rather than run: the pool's writer journals it, runs it
/// through lvm, and then makes the catalogue agree. Each change can also tell, from a catalogue
/// reloaded after an lvm command with an unknown outcome (a timeout: a killed lvm command may have
/// committed), whether it happened.
/// </summary>
public abstract record MetadataChange(string Operation, VolumeRecord Volume)
{
    internal abstract Task ApplyToVgAsync(LvmMetadataWriter lvm, CancellationToken cancellationToken);

    /// <summary>True when the catalogue (loaded from the VG) already shows this change.</summary>
    internal abstract bool IsIn(PoolCatalog catalog);

    internal virtual void ApplyTo(PoolCatalog catalog) => catalog.Put(Volume);

    /// <summary>
    /// How <see cref="PoolWriter"/> may combine this change with its neighbours in the queue into one
    /// metadata commit: spliced into one vgcfgrestore, one multi-LV lvremove, or never (alone).
    /// </summary>
    internal virtual BatchKind Batch => BatchKind.Alone;

    /// <summary>Adds this change to a batch's text; null when done, else why it must run alone.</summary>
    internal virtual string? SpliceInto(MetadataSplice splice) => "not a spliceable change";
}

internal enum BatchKind
{
    Alone,
    Splice,
    Remove,
}

/// <summary>A new LV carrying every tag of <see cref="MetadataChange.Volume"/>.</summary>
public sealed record CreateLv(string Operation, VolumeRecord Volume) : MetadataChange(Operation, Volume)
{
    internal override Task ApplyToVgAsync(LvmMetadataWriter lvm, CancellationToken cancellationToken) =>
        lvm.LvCreateAsync(Volume.VgName, Volume.LvName, Volume.SizeBytes, Volume.Tags(), cancellationToken);

    internal override bool IsIn(PoolCatalog catalog) => catalog.Get(Volume.Id) is not null;

    internal override BatchKind Batch => BatchKind.Splice;

    internal override string? SpliceInto(MetadataSplice splice) => splice.TryCreate(Volume.LvName, Volume.SizeBytes, [.. Volume.Tags()]);
}

/// <summary>A COW snapshot of <paramref name="OriginLv"/> (needs device-mapper on the writing host).</summary>
public sealed record CreateSnapshotLv(VolumeRecord Volume, string OriginLv) : MetadataChange("snapshot", Volume)
{
    internal override Task ApplyToVgAsync(LvmMetadataWriter lvm, CancellationToken cancellationToken) =>
        lvm.LvSnapshotAsync(Volume.VgName, OriginLv, Volume.LvName, Volume.SizeBytes, Volume.Tags(), cancellationToken);

    internal override bool IsIn(PoolCatalog catalog) => catalog.Get(Volume.Id) is not null;
}

/// <summary>
/// Merges snapshot <paramref name="Snapshot"/> into its origin <see cref="MetadataChange.Volume"/>,
/// which then holds the snapshot's data, and removes the snapshot. Journaled under the origin: a
/// crash mid-merge leaves the origin active on this host, and recovery must know which LV to
/// deactivate. <paramref name="MergeTimeout"/> bounds the data merge.
/// </summary>
public sealed record MergeSnapshotLv(VolumeRecord Volume, VolumeRecord Snapshot, TimeSpan MergeTimeout) : MetadataChange("restore", Volume)
{
    internal override Task ApplyToVgAsync(LvmMetadataWriter lvm, CancellationToken cancellationToken) =>
        lvm.LvMergeSnapshotAsync(Volume.VgName, Volume.LvName, Snapshot.LvName, MergeTimeout, cancellationToken);

    internal override bool IsIn(PoolCatalog catalog) => catalog.Get(Snapshot.Id) is null;

    internal override void ApplyTo(PoolCatalog catalog) => catalog.Remove(Snapshot.Id);
}

/// <summary>
/// Turns a snapshot's COW store into a plain LV (<see cref="MetadataChange.Volume"/>: the record as
/// it is after), so that its extents (the origin's old data) can be wiped like any deleted volume's.
/// </summary>
public sealed record SplitSnapshotLv(VolumeRecord Volume) : MetadataChange("split_snapshot", Volume)
{
    internal override Task ApplyToVgAsync(LvmMetadataWriter lvm, CancellationToken cancellationToken) =>
        lvm.LvSplitSnapshotAsync(Volume.VgName, Volume.LvName, cancellationToken);

    internal override bool IsIn(PoolCatalog catalog) => catalog.Get(Volume.Id) is { IsCowStore: false };

}

/// <summary>Removes the LV; already gone counts as done, so a retried delete converges.</summary>
public sealed record RemoveLv(VolumeRecord Volume) : MetadataChange("delete", Volume)
{
    internal override async Task ApplyToVgAsync(LvmMetadataWriter lvm, CancellationToken cancellationToken)
    {
        try
        {
            await lvm.LvRemoveAsync(Volume.VgName, Volume.LvName, cancellationToken).ConfigureAwait(false);
        }
        catch (LvmException e) when (e.Kind == LvmErrorKind.NotFound)
        {
        }
    }

    internal override bool IsIn(PoolCatalog catalog) => catalog.Get(Volume.Id) is null;

    internal override BatchKind Batch => BatchKind.Remove;

    internal override void ApplyTo(PoolCatalog catalog) => catalog.Remove(Volume.Id);
}

/// <summary>Grows the LV to <see cref="MetadataChange.Volume"/>'s size.</summary>
public sealed record ExtendLv(VolumeRecord Volume) : MetadataChange("extend", Volume)
{
    internal override Task ApplyToVgAsync(LvmMetadataWriter lvm, CancellationToken cancellationToken) =>
        lvm.LvExtendAsync(Volume.VgName, Volume.LvName, Volume.SizeBytes, cancellationToken);

    internal override bool IsIn(PoolCatalog catalog) => catalog.Get(Volume.Id)?.SizeBytes >= Volume.SizeBytes;

    internal override BatchKind Batch => BatchKind.Splice;

    internal override string? SpliceInto(MetadataSplice splice) => splice.TryExtend(Volume.LvName, Volume.SizeBytes);
}

/// <summary>
/// Makes the LV's tags those of <paramref name="Volume"/> (owners, labels), adding and removing in
/// one lvchange: one metadata commit.
/// </summary>
public sealed record RetagLv(string Operation, VolumeRecord Before, VolumeRecord Volume) : MetadataChange(Operation, Volume)
{
    internal override Task ApplyToVgAsync(LvmMetadataWriter lvm, CancellationToken cancellationToken)
    {
        var before = Before.Tags();
        var after = Volume.Tags();
        return lvm.LvChangeTagsAsync(Volume.VgName, Volume.LvName, after.Except(before), before.Except(after), cancellationToken);
    }

    internal override bool IsIn(PoolCatalog catalog) => catalog.Get(Volume.Id) is { } now && now.Tags().SetEquals(Volume.Tags());

    internal override BatchKind Batch => BatchKind.Splice;

    internal override string? SpliceInto(MetadataSplice splice)
    {
        var before = Before.Tags();
        var after = Volume.Tags();
        return splice.TryRetag(Volume.LvName, after.Except(before), before.Except(after));
    }

    /// <summary>Nothing to write: the LV already carries exactly these tags.</summary>
    public bool IsEmpty => Before.Tags().SetEquals(Volume.Tags());
}
