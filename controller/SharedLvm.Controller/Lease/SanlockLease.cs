using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Hosting;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;
using SharedLvm.Os.Sanlock;

namespace SharedLvm.Controller.Lease;

/// <summary>
/// The writer lease on sanlock, as oVirt's SPM and lvmlockd hold theirs: one paxos lease per pool, on
/// the pool's own LU, so nothing but the storage decides who writes (an etcd lease can't stop a paused
/// process from writing the LU; the field's two unlocked writers lost 31 % of acknowledged creates).
/// The active controller holds every pool's lease; the others wait for it as standbys. The epoch is
/// the counter kept in the lease area: the taker writes max(seen) + 1 there before it serves. Before
/// every lvm write the leader record is read from the disk itself: a controller that was paused while
/// another took over finds the lease gone and stops before it writes (and the daemon kills it anyway
/// once its lockspace renewal fails; wdmd resets the host where a watchdog exists).
/// </summary>
public sealed class SanlockLease : IWriterLease
{
    private readonly ISanlock _sanlock;
    private readonly ControllerOptions _options;
    private readonly ControllerStore _store;
    private readonly ControllerEpoch _epoch;
    private readonly IProcessRunner _runner;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly FaultInjector _faults;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Held> _held = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _marksGate = new(1, 1);
    private long _marksSaved = -1;
    private ulong _marksSequence;
    private volatile bool _active;
    private volatile string? _activeAddress;

    public SanlockLease(ISanlock sanlock, ControllerOptions options, ControllerStore store, ControllerEpoch epoch, IProcessRunner runner, IHostApplicationLifetime lifetime, FaultInjector faults, ILogger<SanlockLease> logger)
    {
        if (options.HostId is < 1 or > 250)
        {
            throw new DaemonConfigurationException($"Controller:HostId (--host-id) must be 1..250 and unique per controller host with --lease sanlock, not {options.HostId}.");
        }

        _sanlock = sanlock;
        _options = options;
        _store = store;
        _epoch = epoch;
        _runner = runner;
        _lifetime = lifetime;
        _faults = faults;
        _logger = logger;
    }

    public bool IsActive => _active;

    public string? ActiveAddress => _active ? _options.AdvertisedAddress : _activeAddress;

    public DateTimeOffset? LastVerified { get; private set; }

    private TimeSpan RetryInterval => TimeSpan.FromSeconds(Math.Max(1, 2 * _options.LeaseIoTimeoutSeconds));

    /// <summary>How long one read or write of the lease area may take before the path counts as hung.</summary>
    private TimeSpan DiskTimeout => TimeSpan.FromSeconds(Math.Max(10, 4 * _options.LeaseIoTimeoutSeconds));

    public async Task<ulong> AcquireAsync(IReadOnlyList<PoolRow> pools, CancellationToken cancellationToken)
    {
        var located = new List<(PoolRow Row, LeaseArea? Area)>();
        foreach (var row in pools.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            located.Add((row, await LocateAsync(row, cancellationToken).ConfigureAwait(false)));
        }

        if (located.Count > 0 && located.All(l => l.Area is null))
        {
            // The first start with sanlock: no pool has a lease area yet. Two controllers doing this
            // at the same moment both lvcreate; lvm lets one win and only the winner formats.
            located[0] = (located[0].Row, await CreateAreaAsync(located[0].Row, "no pool has one yet", cancellationToken).ConfigureAwait(false));
        }

        var areas = located.Select(l => l.Area).OfType<LeaseArea>().ToArray();
        foreach (var area in areas)
        {
            await EnsureFormattedAsync(area, cancellationToken).ConfigureAwait(false);
        }

        // Every lockspace joined at once: a join is a delta-lease acquisition (3 s at io_timeout 1 s,
        // more at production timeouts), and one after another a successor with 19 pools was not
        // active within 60 s (WriterLeaseTests). A standby waits with them all joined, so a takeover
        // pays only the paxos acquisitions. A failed join is retried by HoldAsync.
        await Task.WhenAll(areas.Select(area => JoinAsync(area, cancellationToken))).ConfigureAwait(false);

        // The home pool's lease decides who is active; the rest follow in name order (no deadlock:
        // every controller asks in the same order).
        foreach (var area in areas)
        {
            await HoldAsync(area, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (row, _) in located.Where(l => l.Area is null))
        {
            await HoldAsync(await CreateAreaAsync(row, "pool from before the lease", cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }

        _faults.Hit("lease.after_acquire");
        var seen = _held.Values.Select(h => h.Area.ReadRecord()?.Epoch ?? 0).DefaultIfEmpty(0UL).Max();
        var epoch = _store.TakeEpoch(_epoch.ControllerId, seen);
        _epoch.Set(epoch);
        foreach (var held in _held.Values)
        {
            WriteRecord(held.Area, epoch);
        }

        _faults.Hit("lease.after_epoch");

        // What the last active controller recorded (fences, drains, reservation numbers, policies)
        // wins over this state directory, which may be empty or from before a takeover.
        ClusterMarks? marks = null;
        foreach (var copy in _held.Values.Select(h => SafeRead(h.Area, a => a.ReadMarks())).OfType<ClusterMarks>().Where(m => m.IsNewerThan(marks)))
        {
            marks = copy;
        }

        if (marks is not null)
        {
            _store.ImportMarks(marks);
            _marksSequence = marks.Sequence;
            ControllerLog.MarksImported(_logger, marks.Nodes.Count, marks.Nodes.Count(n => n.Mark.Length > 0), marks.Epoch, marks.Sequence);
        }

        _active = true;
        LastVerified = DateTimeOffset.UtcNow;
        ControllerLog.LeaseAcquired(_logger, _options.HostId, _held.Count, epoch, _held.Values.Select(h => h.Lver).DefaultIfEmpty(0UL).Max());
        return epoch;
    }

    public async Task AddPoolAsync(PoolRow pool, CancellationToken cancellationToken)
    {
        // The new area's lvcreate is a VG write like any other: only under the lease we hold.
        await VerifyAsync(pool.Name, cancellationToken).ConfigureAwait(false);
        var area = await LocateAsync(pool, cancellationToken).ConfigureAwait(false);
        if (area is null)
        {
            area = await CreateAreaAsync(pool, "new pool", cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await EnsureFormattedAsync(area, cancellationToken).ConfigureAwait(false);
        }

        await HoldAsync(area, cancellationToken).ConfigureAwait(false);
        WriteRecord(area, _epoch.Value);
    }

    public async Task VerifyAsync(string pool, CancellationToken cancellationToken)
    {
        if (!_active)
        {
            throw new ControllerException(ControllerErrorKind.Unavailable,
                $"This controller does not hold the writer lease (standby or deposed); the active controller is {_activeAddress ?? "unknown"}.");
        }

        // A pool being created has no lease yet: the home pool's lease proves this controller is the writer.
        var held = _held.GetValueOrDefault(pool) ?? _held.Values.MinBy(h => h.Area.Pool, StringComparer.Ordinal);
        if (held is null)
        {
            return; // no pool yet: nothing on any LU to fence (ARCHITECTURE.md, bootstrap)
        }

        var leader = await Task.Run(() => PaxosLeader.Read(held.Area.ResourceDisk), CancellationToken.None)
            .WaitAsync(DiskTimeout, cancellationToken).ConfigureAwait(false);
        if (leader is not { IsHeld: true } || leader.OwnerId != _options.HostId || leader.Lver != held.Lver)
        {
            Lose(held, leader);
        }

        LastVerified = DateTimeOffset.UtcNow;
    }

    public async Task SaveMarksAsync(CancellationToken cancellationToken)
    {
        await _marksGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Every registration asks: read the tables only when something changed.
            if (_store.MarksVersion == _marksSaved || _held.Values.MinBy(h => h.Area.Pool, StringComparer.Ordinal) is not { } home)
            {
                return; // unchanged, or no pool yet: no LU to keep them on
            }

            var (marks, version) = _store.ExportMarks();

            await VerifyAsync(home.Area.Pool, cancellationToken).ConfigureAwait(false);
            marks = marks with { Epoch = _epoch.Value, Sequence = ++_marksSequence };
            var failures = new List<string>();
            foreach (var held in _held.Values)
            {
                try
                {
                    await Task.Run(() => held.Area.WriteMarks(marks), CancellationToken.None).WaitAsync(DiskTimeout, cancellationToken).ConfigureAwait(false);
                    _faults.Hit("marks.after_write");
                }
                catch (Exception e) when (e is IOException or SharedLvm.Os.Devices.BlockDeviceException or TimeoutException)
                {
                    // The newest copy wins on takeover: one LU that holds it is enough.
                    failures.Add($"pool {held.Area.Pool}: {e.Message}");
                    ControllerLog.MarksNotWritten(_logger, held.Area.Pool, e.Message);
                }
            }

            if (failures.Count == _held.Count)
            {
                throw new ControllerException(ControllerErrorKind.Unavailable,
                    $"The cluster's node marks could not be written to any pool's LU ({string.Join("; ", failures)}); nothing was acted on, retry when the LU is back.");
            }

            _marksSaved = version;
        }
        finally
        {
            _marksGate.Release();
        }
    }

    public void HigherEpochSeen(string node, ulong seen)
    {
        ControllerLog.HigherEpochSeen(_logger, node, seen, _epoch.Value);
        // Someone took over: the disk says so, and the watch stops this controller at its next check.
        _store.TakeEpoch(_epoch.ControllerId, seen);
    }

    private void Lose(Held held, PaxosLeader? leader)
    {
        _active = false;
        ControllerLog.LeaseLost(_logger, held.Area.Pool, leader?.OwnerId ?? 0, leader?.Lver ?? 0, _options.HostId, held.Lver);
        _activeAddress = SafeRead(held.Area, a => a.ReadRecord())?.Address;
        Environment.ExitCode = Daemon.TemporaryFailure;
        _lifetime.StopApplication();
        throw new ControllerException(ControllerErrorKind.Unavailable,
            $"This controller lost the writer lease of pool {held.Area.Pool} to host {leader?.OwnerId ?? 0}; nothing was written. The active controller is {_activeAddress ?? "unknown"}.");
    }

    /// <summary>Joins the pool's lockspace and waits for its writer resource, as a standby does.</summary>
    private async Task HoldAsync(LeaseArea area, CancellationToken cancellationToken)
    {
        ulong lastOwner = ulong.MaxValue;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                await JoinLockspaceAsync(area, cancellationToken).ConfigureAwait(false);
                await _sanlock.AcquireAsync(area.Lockspace, LeaseArea.Resource, area.ResourceDisk, cancellationToken).ConfigureAwait(false);
                var leader = PaxosLeader.Read(area.ResourceDisk)
                    ?? throw new SanlockException($"The lease of pool {area.Pool} was acquired but its leader record reads back empty.");
                _held[area.Pool] = new Held(area, leader.Lver);
                return;
            }
            catch (SanlockException e) when (e.Kind == SanlockErrorKind.Held)
            {
                var owner = PaxosLeader.Read(area.ResourceDisk)?.OwnerId ?? 0;
                _activeAddress = SafeRead(area, a => a.ReadRecord())?.Address;
                if (owner != lastOwner)
                {
                    lastOwner = owner;
                    ControllerLog.Standby(_logger, _options.HostId, area.Pool, owner, _activeAddress ?? "unknown");
                }
            }
            catch (SanlockException e)
            {
                ControllerLog.LeaseRetry(_logger, $"holding pool {area.Pool}'s lease", e.Message);
            }

            await Task.Delay(RetryInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Joins the pool's lockspace as this host (already joined is success).</summary>
    private Task JoinLockspaceAsync(LeaseArea area, CancellationToken cancellationToken) =>
        _sanlock.JoinAsync(area.Lockspace, _options.HostId, area.LockspaceDisk, _options.LeaseIoTimeoutSeconds, cancellationToken);

    /// <summary>As <see cref="JoinLockspaceAsync"/>, a failure only logged: <see cref="HoldAsync"/> joins again and retries.</summary>
    private async Task JoinAsync(LeaseArea area, CancellationToken cancellationToken)
    {
        try
        {
            await JoinLockspaceAsync(area, cancellationToken).ConfigureAwait(false);
        }
        catch (SanlockException e)
        {
            ControllerLog.LeaseRetry(_logger, $"joining pool {area.Pool}'s lockspace", e.Message);
        }
    }

    private void WriteRecord(LeaseArea area, ulong epoch) =>
        area.WriteRecord(new LeaseRecord(epoch, _epoch.ControllerId, _options.HostId, _options.AdvertisedAddress, DateTimeOffset.UtcNow));

    private static T? SafeRead<T>(LeaseArea area, Func<LeaseArea, T?> read)
        where T : class
    {
        try
        {
            return read(area);
        }
        catch (Exception e) when (e is IOException or SharedLvm.Os.Devices.BlockDeviceException)
        {
            return null;
        }
    }

    private async Task<LeaseArea?> LocateAsync(PoolRow row, CancellationToken cancellationToken) =>
        LeaseArea.From(row.Name, await Reader(row).LayoutAsync(row.VgName, LeaseArea.LvName, cancellationToken).ConfigureAwait(false));

    /// <summary>lvcreate the area (another controller's lvcreate may win: lvm lets one) and format it.</summary>
    private async Task<LeaseArea> CreateAreaAsync(PoolRow row, string reason, CancellationToken cancellationToken)
    {
        ControllerLog.LeaseAreaCreated(_logger, row.Name, LeaseArea.LvName, reason);
        var lvm = new LvmMetadataWriter(_runner, PoolRegistry.LvmConfigFor(row, _options), _options.LvmTimeout, _options.LvmBinary);
        bool created;
        try
        {
            await lvm.LvCreateAsync(row.VgName, LeaseArea.LvName, LeaseArea.SizeBytes, [], cancellationToken).ConfigureAwait(false);
            created = true;
        }
        catch (LvmException e) when (e.Kind == LvmErrorKind.AlreadyExists)
        {
            created = false;
        }

        _faults.Hit("lease.after_area_lvcreate");
        var area = await LocateAsync(row, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"{row.VgName}/{LeaseArea.LvName} is missing right after lvcreate.");
        if (created)
        {
            // Whatever the extents held before (an old lease area's records) is not this area's.
            await FormatAsync(area, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await EnsureFormattedAsync(area, cancellationToken).ConfigureAwait(false);
        }

        return area;
    }

    /// <summary>
    /// Host id 1's. Every controller agrees on who that is without asking anyone, and host ids are
    /// unique among the controllers (sanlock's delta leases refuse a second live holder of one).
    /// </summary>
    public bool MayBootstrap => _options.HostId == 1;

    public async Task<bool> IsCompleteAsync(PoolRow pool, CancellationToken cancellationToken) =>
        await LocateAsync(pool, cancellationToken).ConfigureAwait(false) is { } area && await HasResourceAsync(area, cancellationToken).ConfigureAwait(false)
        && SafeRead(area, a => a.ReadRecord()) is not null;

    /// <summary>
    /// Formats an area whose writer resource holds no leader record of its own lockspace: one created by a controller that
    /// died before (or while) formatting it, which nobody can join until it is. The format writes the
    /// lockspace, then the resource, so the resource's record means the whole area is formatted and
    /// held areas are never touched. Two controllers formatting at once write the same thing before
    /// either has joined (a join takes seconds, a format milliseconds); a joiner whose delta lease a
    /// late format wiped fails its renewal and joins again, and the leader check before every write
    /// catches anything else.
    /// </summary>
    private async Task EnsureFormattedAsync(LeaseArea area, CancellationToken cancellationToken)
    {
        if (!await HasResourceAsync(area, cancellationToken).ConfigureAwait(false))
        {
            await FormatAsync(area, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The area's writer resource holds a leader record of its own lockspace (the format writes it last).</summary>
    private async Task<bool> HasResourceAsync(LeaseArea area, CancellationToken cancellationToken)
    {
        // A record of another lockspace is an old area's, left on the extents this LV now uses.
        var leader = await Task.Run(() => PaxosLeader.Read(area.ResourceDisk), CancellationToken.None).WaitAsync(DiskTimeout, cancellationToken).ConfigureAwait(false);
        return leader is not null && string.Equals(leader.Space, area.Lockspace, StringComparison.Ordinal);
    }

    private async Task FormatAsync(LeaseArea area, CancellationToken cancellationToken)
    {
        ControllerLog.LeaseAreaFormatted(_logger, area.Pool, area.Lockspace);
        await _sanlock.FormatAsync(area.Lockspace, area.LockspaceDisk, LeaseArea.Resource, area.ResourceDisk, _options.LeaseIoTimeoutSeconds, cancellationToken).ConfigureAwait(false);
    }

    private LvmReader Reader(PoolRow row) => new(_runner, PoolRegistry.LvmConfigFor(row, _options), _options.LvmTimeout, _options.LvmBinary);

    private sealed record Held(LeaseArea Area, ulong Lver);
}
