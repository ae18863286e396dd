using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;
using SharedLvm.Os.Processes;
using SharedLvm.Os.Reservations;

namespace SharedLvm.Agent.Reservations;

/// <summary>
/// This node's persistent reservation key on every pool LU, and the node's side of a fence.
///
/// The controller says, in every registration and heartbeat reply (<see cref="ReservationOrder"/>),
/// the node's key, the pools' LUs and whether to register. The keeper then, every
/// <see cref="AgentOptions.ReservationCheckInterval"/> and whether or not the controller is
/// reachable, reads the LU's keys through mpathpersist and:
/// - registers (every path) when the controller says so and the key is absent, and holds the "write
///   exclusive, registrants only" reservation if nobody does;
/// - registers again when the key is there on fewer I_T nexuses than the map has paths (a path came
///   back or was added: multipathd does it too with `reservation_key file`, this catches the rest);
/// - when a key it had registered is gone, the node was preempted (fenced at the storage): it latches
///   that, durably, reports fenced_at_storage and deactivates what it holds. It never registers itself
///   back in on its own, however old its last order: a partitioned node's last order said "register",
///   and obeying it would undo the fence. Only an order received after the latch clears it, and the
///   controller sends register=true again only after `slvm node resume`.
/// </summary>
public sealed class ReservationKeeper : BackgroundService
{
    private readonly IPersistentReservations _pr;
    private readonly SanWatcher _watcher;
    private readonly IVolumeActivator _activator;
    private readonly AgentOptions _options;
    private readonly ILogger<ReservationKeeper> _logger;
    private readonly string _statePath;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly object _lock = new();
    private readonly HashSet<string> _registered = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _fenced = new(StringComparer.Ordinal);
    private readonly HashSet<string> _deactivated = new(StringComparer.Ordinal);
    private ReservationOrder? _order;
    private long _orderSequence;
    private IReadOnlyList<Finding> _findings = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, LuReservations> _observed = new(StringComparer.Ordinal);

    public ReservationKeeper(IPersistentReservations pr, SanWatcher watcher, IVolumeActivator activator, AgentOptions options, ILogger<ReservationKeeper> logger)
    {
        _pr = pr;
        _watcher = watcher;
        _activator = activator;
        _options = options;
        _logger = logger;
        _statePath = Path.Combine(options.StateDirectory, "reservations");
        Load();
    }

    public IReadOnlyList<Finding> Findings => Volatile.Read(ref _findings);

    /// <summary>What the last pass read of each pool LU's reservations: heartbeats carry it to `slvm pool get`.</summary>
    public IReadOnlyList<LuReservations> Observed => [.. _observed.Values];

    /// <summary>True while any LU has preempted this node's key (until the controller lets it register again).</summary>
    public bool FencedAtStorage
    {
        get
        {
            lock (_lock)
            {
                return _fenced.Count > 0;
            }
        }
    }

    public ReservationKey? Key
    {
        get
        {
            lock (_lock)
            {
                return _order is { Key: not 0 } o ? new ReservationKey(o.Key) : null;
            }
        }
    }

    /// <summary>An order from the controller (registration or heartbeat reply). Register=true after a latch lifts it.</summary>
    public void Apply(ReservationOrder? order)
    {
        if (order is null)
        {
            return;
        }

        lock (_lock)
        {
            _orderSequence++;
            _order = order;
            if (order.Register && _fenced.Count > 0 && _fenced.Values.All(latchedAt => latchedAt < _orderSequence))
            {
                AgentLog.FenceLifted(_logger, string.Join(", ", _fenced.Keys));
                _fenced.Clear();
                _registered.Clear();
                _deactivated.Clear();
                Save();
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _watcher.WaitForFirstScanAsync(stoppingToken).ConfigureAwait(false);
        using var timer = new PeriodicTimer(_options.ReservationCheckInterval);
        do
        {
            await SyncAsync(stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>One pass over the pools' LUs (also run right after each order and on path changes).</summary>
    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        ReservationOrder? order;
        lock (_lock)
        {
            order = _order;
        }

        if (order is null || order.Key == 0 || _watcher.Current is not { } snapshot)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var key = new ReservationKey(order.Key);
            var findings = new List<Finding>();
            foreach (var wwid in order.Wwids)
            {
                if (snapshot.View.MapFor(wwid) is not { Usable: true } map)
                {
                    continue;
                }

                try
                {
                    findings.AddRange(await SyncLuAsync(map, key, order.Register, cancellationToken).ConfigureAwait(false));
                }
                catch (Exception e) when (e is PersistentReservationException or ProcessTimeoutException or ProcessStartException or FormatException)
                {
                    var unsupported = e is PersistentReservationException { Kind: PrErrorKind.NotSupported };
                    if (unsupported)
                    {
                        _observed[wwid] = new LuReservations { Wwid = wwid, Supported = false };
                    }
                    else
                    {
                        _observed.TryRemove(wwid, out _);
                    }

                    findings.Add(new Finding(Layer.Multipath, unsupported ? HealthState.Ok : HealthState.Degraded, wwid,
                        unsupported ? "reservations_unsupported" : "reservation_check_failed",
                        unsupported ? $"LU {wwid} does not implement SCSI-3 persistent reservations: this node can only be fenced by declaration."
                                    : $"Reading the reservation keys of {wwid} failed: {e.Message}",
                        unsupported ? string.Empty : "Check `mpathpersist --in -k " + map.DevicePath + "` and multipathd."));
                }
            }

            var previous = Interlocked.Exchange(ref _findings, findings);
            if (!previous.SequenceEqual(findings))
            {
                // The next heartbeat should carry it, not the next resync (30 s).
                _watcher.Poke();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<IReadOnlyList<Finding>> SyncLuAsync(MultipathMapInfo map, ReservationKey key, bool mayRegister, CancellationToken cancellationToken)
    {
        var device = map.DevicePath;
        bool latched, hadRegistered;
        lock (_lock)
        {
            latched = _fenced.ContainsKey(map.Wwid);
            hadRegistered = _registered.Contains(map.Wwid);
        }

        if (latched)
        {
            return [await FencedAsync(map.Wwid, cancellationToken).ConfigureAwait(false)];
        }

        var keys = await _pr.ReadKeysAsync(device, cancellationToken).ConfigureAwait(false);
        var registrations = keys.Registrations(key);
        if (registrations == 0 && hadRegistered)
        {
            // Preempted: someone removed the key this node registered. That is a fence.
            lock (_lock)
            {
                // Only an order that arrives after this moment can lift the latch.
                _fenced[map.Wwid] = _orderSequence;
                Save();
            }

            AgentLog.FencedAtStorage(_logger, map.Wwid, key.ToString());
            return [await FencedAsync(map.Wwid, cancellationToken).ConfigureAwait(false)];
        }

        if (registrations == 0 && !mayRegister)
        {
            return [new Finding(Layer.Multipath, HealthState.Degraded, map.Wwid, "reservation_missing",
                $"This node's reservation key {key} is not registered on {map.Wwid}, and the controller has not asked it to register (FENCED?).",
                "`slvm node get` for this node; `slvm node resume` lets it register again.")];
        }

        if (registrations < Math.Max(1, map.Paths.Count))
        {
            // First registration, or a path that came (back) without the key: REGISTER AND IGNORE on
            // every path. Safe here: either the controller just allowed it, or the key is still
            // registered on another path of this node (it was not preempted).
            await _pr.RegisterAsync(device, key, cancellationToken).ConfigureAwait(false);
            lock (_lock)
            {
                if (_registered.Add(map.Wwid))
                {
                    Save();
                }
            }

            AgentLog.RegisteredKey(_logger, map.Wwid, key.ToString(), registrations, map.Paths.Count);
        }
        else if (!hadRegistered)
        {
            lock (_lock)
            {
                _registered.Add(map.Wwid);
                Save();
            }
        }

        var reservation = await _pr.ReadReservationAsync(device, cancellationToken).ConfigureAwait(false);
        if (!reservation.Held)
        {
            await _pr.ReserveAsync(device, key, cancellationToken).ConfigureAwait(false);
            AgentLog.Reserved(_logger, map.Wwid, key.ToString());
        }

        // As read at the start of this pass: a registration or reservation made just now shows in the next.
        var observed = new LuReservations { Wwid = map.Wwid, Supported = true, Holder = reservation.Holder?.Value ?? 0 };
        observed.Keys.AddRange(keys.Keys.Select(k => k.Value));
        _observed[map.Wwid] = observed;
        return [];
    }

    /// <summary>
    /// The fencer's side of a fence, on the controller's order: register this node's key (a READY node
    /// the controller chose may always register), then preempt the victim's key unless it is already
    /// gone (a retry after a crash only reads), and read the keys back for the controller to confirm.
    /// </summary>
    public async Task<PreemptReservationResponse> PreemptAsync(string wwid, ReservationKey own, ReservationKey victim, CancellationToken cancellationToken)
    {
        if (_watcher.Current?.View.MapFor(wwid) is not { Usable: true } map)
        {
            throw new AgentException(AgentErrorKind.NotFound, $"LU {wwid} is not visible on this node as a usable multipath map.");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RegisteredKeys keys;
            try
            {
                keys = await _pr.ReadKeysAsync(map.DevicePath, cancellationToken).ConfigureAwait(false);
            }
            catch (PersistentReservationException e) when (e.Kind == PrErrorKind.NotSupported)
            {
                return new PreemptReservationResponse { Supported = false, Mode = "unsupported" };
            }

            if (keys.Registrations(own) < Math.Max(1, map.Paths.Count))
            {
                await _pr.RegisterAsync(map.DevicePath, own, cancellationToken).ConfigureAwait(false);
            }

            var mode = "already_absent";
            if (keys.Contains(victim))
            {
                mode = await _pr.PreemptAsync(map.DevicePath, own, victim, cancellationToken).ConfigureAwait(false) == PreemptMode.PreemptAndAbort
                    ? "preempt_and_abort" : "preempt";
                AgentLog.PreemptedKey(_logger, wwid, victim.ToString(), own.ToString(), mode);
            }

            if (!(await _pr.ReadReservationAsync(map.DevicePath, cancellationToken).ConfigureAwait(false)).Held)
            {
                await _pr.ReserveAsync(map.DevicePath, own, cancellationToken).ConfigureAwait(false);
            }

            var after = await _pr.ReadKeysAsync(map.DevicePath, cancellationToken).ConfigureAwait(false);
            var response = new PreemptReservationResponse { Supported = true, Mode = mode };
            response.KeysAfter.AddRange(after.Keys.Select(k => k.Value));
            return response;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Fenced at the storage: writes fail with reservation conflicts; deactivate what is not open, say what is.</summary>
    private async Task<Finding> FencedAsync(string wwid, CancellationToken cancellationToken)
    {
        var stillActive = new List<string>();
        var lvs = _watcher.Current?.View.ActiveLvs.Select(l => DmName.Split(l.DmName)).OfType<(string Vg, string Lv)>().Where(l => VolumeId.IsVolumeLv(l.Lv)).ToArray() ?? [];
        foreach (var (vg, lv) in lvs)
        {
            try
            {
                var openers = await _activator.OpenersAsync(vg, lv, cancellationToken).ConfigureAwait(false);
                if (openers.Count > 0)
                {
                    stillActive.Add($"{vg}/{lv} (open by {string.Join(", ", openers)})");
                    continue;
                }

                await _activator.DeactivateAsync(vg, lv, cancellationToken).ConfigureAwait(false);
                if (_deactivated.Add(vg + "/" + lv))
                {
                    AgentLog.DeactivatedFenced(_logger, vg, lv);
                }
            }
            catch (Exception e) when (e is SharedLvm.Os.Lvm.LvmException or ProcessTimeoutException or AgentException)
            {
                stillActive.Add($"{vg}/{lv} ({e.Message})");
            }
        }

        return new Finding(Layer.Multipath, HealthState.Failed, wwid, "fenced_at_storage",
            $"This node's reservation key was preempted on {wwid}: the array refuses its writes (reservation conflict)." +
            (stillActive.Count > 0 ? " Still active: " + string.Join("; ", stillActive) + "." : " Its volumes were deactivated."),
            "Stop what uses the volumes here; once the node is sound, `slvm node resume` registers it again.");
    }

    private void Load()
    {
        if (!File.Exists(_statePath))
        {
            return;
        }

        foreach (var line in File.ReadAllLines(_statePath))
        {
            var parts = line.Split(' ', 2, StringSplitOptions.TrimEntries);
            if (parts is ["registered", var wwid])
            {
                _registered.Add(wwid);
            }
            else if (parts is ["fenced", var fenced])
            {
                // Latched before this start: any order from now on is newer (sequence 0 < 1).
                _fenced[fenced] = 0;
            }
        }
    }

    /// <summary>Durable, so that an agent restarted while fenced still knows it was preempted (and does not register back in).</summary>
    private void Save()
    {
        var temporary = _statePath + ".tmp";
        File.WriteAllLines(temporary, [.. _registered.Select(w => "registered " + w), .. _fenced.Keys.Select(w => "fenced " + w)]);
        File.Move(temporary, _statePath, overwrite: true);
    }
}
