using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
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
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Held> _held = new(StringComparer.Ordinal);
    private volatile bool _active;
    private volatile string? _activeAddress;

    public SanlockLease(ISanlock sanlock, ControllerOptions options, ControllerStore store, ControllerEpoch epoch, IProcessRunner runner, IHostApplicationLifetime lifetime, ILogger<SanlockLease> logger)
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
        _logger = logger;
    }

    public bool IsActive => _active;

    public string? ActiveAddress => _active ? _options.AdvertisedAddress : _activeAddress;

    public DateTimeOffset? LastVerified { get; private set; }

    private TimeSpan RetryInterval => TimeSpan.FromSeconds(Math.Max(1, 2 * _options.LeaseIoTimeoutSeconds));

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

        // The home pool's lease decides who is active; the rest follow in name order (no deadlock:
        // every controller asks in the same order).
        foreach (var (_, area) in located.Where(l => l.Area is not null))
        {
            await HoldAsync(area!, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (row, _) in located.Where(l => l.Area is null))
        {
            await HoldAsync(await CreateAreaAsync(row, "pool from before the lease", cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }

        var seen = _held.Values.Select(h => h.Area.ReadRecord()?.Epoch ?? 0).DefaultIfEmpty(0UL).Max();
        var epoch = _store.TakeEpoch(_epoch.ControllerId, seen);
        _epoch.Set(epoch);
        foreach (var held in _held.Values)
        {
            WriteRecord(held.Area, epoch);
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
        var area = await LocateAsync(pool, cancellationToken).ConfigureAwait(false)
            ?? await CreateAreaAsync(pool, "new pool", cancellationToken).ConfigureAwait(false);
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
            .WaitAsync(TimeSpan.FromSeconds(Math.Max(10, 4 * _options.LeaseIoTimeoutSeconds)), cancellationToken).ConfigureAwait(false);
        if (leader is not { IsHeld: true } || leader.OwnerId != _options.HostId || leader.Lver != held.Lver)
        {
            Lose(held, leader);
        }

        LastVerified = DateTimeOffset.UtcNow;
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
        _activeAddress = SafeRead(held.Area)?.Address;
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
                await _sanlock.JoinAsync(area.Lockspace, _options.HostId, area.LockspaceDisk, _options.LeaseIoTimeoutSeconds, cancellationToken).ConfigureAwait(false);
                await _sanlock.AcquireAsync(area.Lockspace, LeaseArea.Resource, area.ResourceDisk, cancellationToken).ConfigureAwait(false);
                var leader = PaxosLeader.Read(area.ResourceDisk)
                    ?? throw new SanlockException($"The lease of pool {area.Pool} was acquired but its leader record reads back empty.");
                _held[area.Pool] = new Held(area, leader.Lver);
                return;
            }
            catch (SanlockException e) when (e.Kind == SanlockErrorKind.Held)
            {
                var owner = PaxosLeader.Read(area.ResourceDisk)?.OwnerId ?? 0;
                _activeAddress = SafeRead(area)?.Address;
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

    private void WriteRecord(LeaseArea area, ulong epoch) =>
        area.WriteRecord(new LeaseRecord(epoch, _epoch.ControllerId, _options.HostId, _options.AdvertisedAddress, DateTimeOffset.UtcNow));

    private static LeaseRecord? SafeRead(LeaseArea area)
    {
        try
        {
            return area.ReadRecord();
        }
        catch (Exception e) when (e is IOException or SharedLvm.Os.Devices.BlockDeviceException)
        {
            return null;
        }
    }

    private async Task<LeaseArea?> LocateAsync(PoolRow row, CancellationToken cancellationToken) =>
        LeaseArea.From(row.Name, await Reader(row).LayoutAsync(row.VgName, LeaseArea.LvName, cancellationToken).ConfigureAwait(false));

    /// <summary>lvcreate the area and format it: only the controller whose lvcreate won formats.</summary>
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

        var area = await LocateAsync(row, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"{row.VgName}/{LeaseArea.LvName} is missing right after lvcreate.");
        if (created)
        {
            await _sanlock.FormatAsync(area.Lockspace, area.LockspaceDisk, LeaseArea.Resource, area.ResourceDisk, _options.LeaseIoTimeoutSeconds, cancellationToken).ConfigureAwait(false);
        }

        return area;
    }

    private LvmReader Reader(PoolRow row) => new(_runner, PoolRegistry.LvmConfigFor(row, _options), _options.LvmTimeout, _options.LvmBinary);

    private sealed record Held(LeaseArea Area, ulong Lver);
}
