using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Lvm;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Agent.Data;

/// <summary>
/// What the node checks before it copies or zeroes a volume's data, and the jobs it runs. The
/// controller decides; the agent refuses anything that could destroy live data on its own reading
/// of the VG: a wipe only of an LV the controller marked for wiping when its volume was deleted, a
/// copy only onto a clone still waiting for its data, never an LV active on this node, only linear
/// LVs (their bytes are the extents, in order) or a COW snapshot of one (read through its exception
/// table), and only on the LU the command names.
/// </summary>
public sealed class DataWorkflow
{
    private readonly AgentLvm _lvm;
    private readonly IVolumeActivator _activator;
    private readonly SysfsTree _sysfs;
    private readonly DataMover _mover;
    private readonly AgentOptions _options;
    private readonly ILogger<DataWorkflow> _logger;
    private readonly SemaphoreSlim _slots;

    /// <summary>One job per target LV at a time: a wipe after a cancelled copy waits for the copy's last chunk.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> _perLv = new(StringComparer.Ordinal);

    public DataWorkflow(AgentLvm lvm, IVolumeActivator activator, SysfsTree sysfs, DataMover mover, AgentOptions options, ILogger<DataWorkflow> logger)
    {
        _lvm = lvm;
        _activator = activator;
        _sysfs = sysfs;
        _mover = mover;
        _options = options;
        _logger = logger;
        _slots = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentDataJobs));
    }

    public async IAsyncEnumerable<DataProgress> WipeAsync(LvRef lv, bool discard, ulong resumeFrom, ulong maxBytesPerSecond,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var layout = await LayoutAsync(lv, cancellationToken).ConfigureAwait(false);
        if (!layout.Tags.Contains(DataTags.WipePending, StringComparer.Ordinal))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"{lv.VgName}/{lv.LvName} is not marked for wiping ({DataTags.WipePending}); refusing to destroy its data.");
        }

        await CheckInactiveAsync(layout, cancellationToken).ConfigureAwait(false);
        var device = Device(layout, lv);
        var method = discard && DiscardReadsZeros(device) ? "discard" : "zeroout";
        AgentLog.DataJobStarted(_logger, "wipe", lv.VolumeId, lv.VgName, lv.LvName, _options.NodeName, layout.SizeBytes, resumeFrom, method);
        await foreach (var progress in RunAsync("wipe", lv, method, (report, ct) =>
            _mover.WipeAsync(device, layout.Runs, method == "discard", resumeFrom, Rate(maxBytesPerSecond), report, ct), cancellationToken).ConfigureAwait(false))
        {
            yield return progress;
        }
    }

    public async IAsyncEnumerable<DataProgress> CopyAsync(LvRef source, LvRef target, ulong resumeFrom, ulong maxBytesPerSecond,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var from = await LayoutAsync(source, cancellationToken, snapshotAllowed: true).ConfigureAwait(false);
        var to = await LayoutAsync(target, cancellationToken).ConfigureAwait(false);
        if (!to.Tags.Contains(DataTags.CopyPending, StringComparer.Ordinal))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"{target.VgName}/{target.LvName} is not a clone waiting for its data ({DataTags.CopyPending}); refusing to overwrite it.");
        }

        if (from.Tags.Contains(DataTags.WipePending, StringComparer.Ordinal))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"{source.VgName}/{source.LvName} is being deleted; there is nothing to copy.");
        }

        // A snapshot's data is its origin's extents read through its COW store (CowExceptionTable):
        // nothing is activated, and its origin may be attached and written elsewhere meanwhile.
        var cow = from.IsSnapshot ? from : null;
        if (cow is not null)
        {
            from = await LayoutAsync(new LvRef(source) { LvName = cow.Origin }, cancellationToken).ConfigureAwait(false);
            if (from.Runs[0].PvPath != cow.Runs[0].PvPath)
            {
                throw new AgentException(AgentErrorKind.FailedPrecondition, $"Snapshot {source.LvName} and its origin {cow.Origin} lie on different PVs; a pool is one LU.");
            }
        }
        else
        {
            // A plain source is read below LVM: a holder writing it now would tear the copy.
            await CheckInactiveAsync(from, cancellationToken).ConfigureAwait(false);
        }

        if (to.SizeBytes < from.SizeBytes)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"The clone {target.LvName} has {to.SizeBytes} bytes, its source {from.SizeBytes}.");
        }

        await CheckInactiveAsync(to, cancellationToken).ConfigureAwait(false);
        var sourceDevice = Device(from, source);
        var targetDevice = Device(to, target);
        var method = cow is null ? "direct I/O" : $"direct I/O, snapshot of {cow.Origin}";
        AgentLog.DataJobStarted(_logger, "copy", target.VolumeId, target.VgName, target.LvName, _options.NodeName, from.SizeBytes, resumeFrom, method);
        await foreach (var progress in RunAsync("copy", target, "direct", async (report, ct) =>
        {
            try
            {
                await _mover.CopyAsync(sourceDevice, from.Runs, cow?.Runs, targetDevice, to.Runs, resumeFrom, Rate(maxBytesPerSecond), report, ct).ConfigureAwait(false);
            }
            catch (InvalidDataException e) when (cow is not null)
            {
                // The COW store can't be read as a snapshot (overflowed, or not one): no copy can be made from it.
                throw new AgentException(AgentErrorKind.FailedPrecondition, $"Snapshot {source.VgName}/{source.LvName} of {cow.Origin} can't be copied: {e.Message}", e);
            }
        }, cancellationToken).ConfigureAwait(false))
        {
            yield return progress;
        }
    }

    /// <summary>Runs one job in a slot of this node, turning its samples into the contract's progress messages as they come.</summary>
    private async IAsyncEnumerable<DataProgress> RunAsync(string operation, LvRef lv, string method, Func<Action<DataProgressSample>, CancellationToken, Task> job,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var lvLock = _perLv.GetOrAdd(lv.VgName + "/" + lv.LvName, _ => new SemaphoreSlim(1, 1));
        if (!await lvLock.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false))
        {
            throw new AgentException(AgentErrorKind.Unavailable, $"Another copy or wipe of {lv.VgName}/{lv.LvName} is still running on node {_options.NodeName}.");
        }

        if (!await _slots.WaitAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
        {
            lvLock.Release();
            throw new AgentException(AgentErrorKind.ResourceExhausted,
                $"Node {_options.NodeName} already runs {_options.MaxConcurrentDataJobs} copies or wipes; try another node or later.");
        }

        try
        {
            // Only the latest sample matters to a watcher: a slow reader must not hold up the I/O.
            var samples = Channel.CreateBounded<DataProgressSample>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
            var running = job(sample => samples.Writer.TryWrite(sample), cancellationToken)
                .ContinueWith(t => samples.Writer.TryComplete(t.Exception?.InnerException), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            DataProgressSample? last = null;
            await foreach (var sample in samples.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                last = sample;
                yield return ToContract(operation, method, sample);
            }

            await running.ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            AgentLog.DataJobFinished(_logger, operation, lv.VolumeId, lv.VgName, lv.LvName, _options.NodeName, last?.DoneBytes ?? 0, last?.ZeroedBytes ?? 0, last?.BytesPerSecond ?? 0);
        }
        finally
        {
            _slots.Release();
            lvLock.Release();
        }
    }

    private DataProgress ToContract(string operation, string method, DataProgressSample sample) => new()
    {
        Operation = operation,
        DoneBytes = sample.DoneBytes,
        TotalBytes = sample.TotalBytes,
        BytesPerSecond = (ulong)sample.BytesPerSecond,
        EtaSeconds = sample.BytesPerSecond > 0 && !sample.Finished ? (uint)Math.Ceiling((sample.TotalBytes - sample.DoneBytes) / sample.BytesPerSecond) : 0,
        Node = _options.NodeName,
        ZeroedBytes = sample.ZeroedBytes,
        Method = method,
        Finished = sample.Finished,
    };

    private ulong Rate(ulong asked) => asked == 0 ? _options.DataJobMaxBytesPerSecond : Math.Min(asked, _options.DataJobMaxBytesPerSecond);

    private async Task<LvLayout> LayoutAsync(LvRef lv, CancellationToken cancellationToken, bool snapshotAllowed = false)
    {
        var layout = await _lvm.LayoutAsync(lv.VgName, lv.LvName, cancellationToken).ConfigureAwait(false)
            ?? throw new AgentException(AgentErrorKind.NotFound, $"{lv.VgName}/{lv.LvName} does not exist in the VG as node {_options.NodeName} sees it.");
        if (layout.IsMerging)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"{lv.VgName}/{lv.LvName} is merging with its snapshot or origin; its data is in flux.");
        }

        if (layout.IsSnapshot && !snapshotAllowed)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"{lv.VgName}/{lv.LvName} is a COW snapshot of {layout.Origin}; its extents are not its data.");
        }

        if (!layout.IsLinear)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"{lv.VgName}/{lv.LvName} is not a plain linear LV ({string.Join(", ", layout.Runs.Select(r => r.SegmentType).Distinct())}); its data is not its extents in order.");
        }

        if (layout.Runs.Select(r => r.PvPath).Distinct(StringComparer.Ordinal).Count() != 1)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"{lv.VgName}/{lv.LvName} spans several PVs; a pool is one LU.");
        }

        return layout;
    }

    /// <summary>Data I/O below LVM on an LV that is active here would race its device-mapper users.</summary>
    private async Task CheckInactiveAsync(LvLayout layout, CancellationToken cancellationToken)
    {
        if (layout.IsActiveHere || await _activator.DeviceAsync(layout.VgName, layout.LvName, cancellationToken).ConfigureAwait(false) is not null)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"{layout.VgName}/{layout.LvName} is active on node {_options.NodeName}; detach it first.");
        }
    }

    /// <summary>The PV's device, checked to be the LU the command names when it is a multipath map.</summary>
    private string Device(LvLayout layout, LvRef lv)
    {
        var path = layout.Runs[0].PvPath;
        var wwid = lv.Lun?.Wwid ?? string.Empty;
        if (MultipathWwidOf(path) is { } seen && wwid.Length > 0 && !string.Equals(seen, wwid, StringComparison.OrdinalIgnoreCase))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"{lv.VgName}/{lv.LvName} lies on {path}, the map of LU {seen}, but the command names LU {wwid}; refusing.");
        }

        return path;
    }

    /// <summary>The WWID of the multipath map a device path leads to, or null when it is none.</summary>
    private string? MultipathWwidOf(string path)
    {
        var resolved = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        var name = Path.GetFileName(resolved);
        var uuid = name.StartsWith("dm-", StringComparison.Ordinal) ? _sysfs.Read($"sys/block/{name}/dm/uuid") : null;
        return uuid is not null && uuid.StartsWith("mpath-", StringComparison.Ordinal) ? uuid["mpath-".Length..] : null;
    }

    /// <summary>
    /// Discarded blocks must read back as zeros on every path, or a discard is no wipe. The kernel
    /// picks WRITE SAME with UNMAP as a disk's zeroing mode only when the LU reports LBPRZ.
    /// </summary>
    private bool DiscardReadsZeros(string device)
    {
        var resolved = new FileInfo(device).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? device;
        var name = Path.GetFileName(resolved);
        var slaves = _sysfs.List($"sys/block/{name}/slaves");
        return slaves.Count > 0 && slaves.All(slave =>
            _sysfs.List($"sys/block/{slave}/device/scsi_disk") is [var disk, ..]
            && (_sysfs.Read($"sys/block/{slave}/device/scsi_disk/{disk}/zeroing_mode") ?? string.Empty).EndsWith("_unmap", StringComparison.Ordinal));
    }
}
