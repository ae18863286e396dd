using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Pools;
using SharedLvm.Os.Reservations;

namespace SharedLvm.Controller.Nodes;

/// <summary>
/// The nodes: registration, heartbeats, liveness and the cluster-wide check nobody else makes, that
/// no LV is active on two nodes. A node that misses heartbeats becomes UNREACHABLE and its volumes
/// stay pinned to it: without fencing, moving them is unsafe. Only an operator (or a fencing
/// integration) marks it FENCED.
/// </summary>
public sealed class NodeDirectory : BackgroundService
{
    public const int MissedHeartbeatsBeforeUnreachable = 3;

    private readonly ConcurrentDictionary<string, NodeRecord> _nodes = new(StringComparer.Ordinal);
    private readonly ControllerStore _store;
    private readonly EventBus _events;
    private readonly PoolRegistry _pools;
    private readonly TimeProvider _time;
    private readonly ILogger<NodeDirectory> _logger;
    private long _doubleActivations;

    public NodeDirectory(ControllerStore store, EventBus events, PoolRegistry pools, TimeProvider time, ControllerOptions options, ILogger<NodeDirectory> logger)
    {
        HeartbeatInterval = options.HeartbeatInterval;
        _store = store;
        _events = events;
        _pools = pools;
        _time = time;
        _logger = logger;
        Reload();
    }

    /// <summary>
    /// Loads the nodes from the state directory: at construction, and again once the writer lease
    /// brought the cluster's marks from the LU (a successor's state directory may be empty).
    /// </summary>
    public void Reload()
    {
        var numbers = _store.ReservationNumbers();
        var fences = _store.Fences().ToDictionary(f => f.Node, StringComparer.Ordinal);
        _nodes.Clear();
        foreach (var row in _store.Nodes())
        {
            var state = Enum.TryParse<NodeLiveness>(row.State, out var s) ? s : NodeLiveness.Unreachable;
            // After a controller restart nobody has heartbeated yet: READY nodes start UNREACHABLE
            // until they report in; FENCED and DRAINING marks are kept.
            _nodes[row.Name] = new NodeRecord(row.Name, row.Address, state == NodeLiveness.Ready ? NodeLiveness.Unreachable : state,
                row.AgentVersion, null, [], [], HealthState.Unspecified, [])
            {
                Key = numbers.TryGetValue(row.Name, out var number) ? ReservationKey.ForNodeNumber(number) : null,
                Fence = state == NodeLiveness.Fenced && fences.TryGetValue(row.Name, out var fence) ? FenceOf(fence) : null,
            };
        }
    }

    public TimeSpan HeartbeatInterval { get; }

    public long DoubleActivations => Interlocked.Read(ref _doubleActivations);

    public IReadOnlyList<NodeRecord> All => _nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal).ToArray();

    public NodeRecord Get(string name)
    {
        Validation.NodeName("name", name);
        return _nodes.TryGetValue(name, out var node) ? node : throw ControllerException.NotFound($"Node '{name}' has never registered.");
    }

    /// <summary>The node, or null when it never registered.</summary>
    public NodeRecord? Find(string name) => _nodes.GetValueOrDefault(name);

    /// <summary>The volumes tagged for a node, attached or still attaching.</summary>
    public IEnumerable<string> AttachedVolumeIds(string node) =>
        _pools.All.SelectMany(p => p.Catalog.Snapshot()).Where(v => v.IsOwnedBy(node)).Select(v => v.Id);

    /// <summary>
    /// Lifts FENCED or DRAINING: the node is READY again if it heartbeated recently, UNREACHABLE
    /// until it does otherwise.
    /// </summary>
    public NodeRecord Resume(string name)
    {
        var node = Get(name);
        var fresh = node.LastHeartbeat is { } last && _time.GetUtcNow() - last < HeartbeatInterval * MissedHeartbeatsBeforeUnreachable;
        // The fence record goes first: from the next registration or heartbeat reply on, the agent is
        // told to register its key again (ReservationOrderFor).
        _store.RemoveFence(name);
        _nodes[name] = node with { Fence = null };
        return SetState(name, fresh ? NodeLiveness.Ready : NodeLiveness.Unreachable, "Resumed by an operator.");
    }

    /// <summary>Marks a node FENCED with how and why; the caller (NodeFencing) has recorded the fence durably first.</summary>
    public NodeRecord MarkFenced(string name, FenceInfo fence)
    {
        var node = Get(name);
        _nodes[name] = node with { Fence = fence };
        var label = fence.Method == FenceMethod.Storage ? "at the storage (reservation key preempted and read back absent)" : "DECLARED (not verified at the storage)";
        return SetState(name, NodeLiveness.Fenced, $"Fenced {label} by {fence.Trigger}: {fence.Reason}");
    }

    /// <summary>
    /// What the agent is told about reservations in every reply: its key, the pools' LUs, and whether
    /// to register. Never while FENCED: a fenced node registering itself back in would undo the fence.
    /// </summary>
    public ReservationOrder ReservationOrderFor(string name)
    {
        var node = Get(name);
        // Not from the moment a fence's intent is recorded (before the preempt): a reply built after
        // the preempt must not tell the victim to register back in, even before it is marked FENCED.
        var fencing = _store.Fences().Any(f => f.Node == name);
        var order = new ReservationOrder { Key = node.Key?.Value ?? 0, Register = node.Key is not null && node.State != NodeLiveness.Fenced && !fencing };
        order.Wwids.AddRange(_pools.All.Select(p => p.Row.Wwid).Distinct(StringComparer.Ordinal));
        return order;
    }

    /// <summary>
    /// An LU's persistent reservations as the node that heartbeated last read them, keys named by the
    /// nodes they were assigned to; null until some node reported them.
    /// </summary>
    public PoolReservations? ReservationsOf(string wwid)
    {
        var reports = _nodes.Values
            .SelectMany(n => n.Reservations.Where(r => r.Wwid == wwid).Select(r => (Node: n, Read: r)))
            .ToArray();
        if (reports.Length == 0)
        {
            return null;
        }

        var report = reports.MaxBy(x => x.Node.LastHeartbeat);

        var owners = _nodes.Values.Where(n => n.Key is not null).ToDictionary(n => n.Key!.Value.Value, n => n.Name);
        foreach (var key in report.Read.Keys.Where(k => new ReservationKey(k).IsControllerHost))
        {
            owners[key] = "controller host";
        }

        var result = new PoolReservations
        {
            Supported = report.Read.Supported,
            Holder = report.Read.Holder,
            HolderNode = owners.GetValueOrDefault(report.Read.Holder, string.Empty),
            ReportedBy = report.Node.Name,
            ReportedAt = report.Node.LastHeartbeat is { } at ? Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(at) : null,
        };
        result.Keys.AddRange(report.Read.Keys.GroupBy(k => k).OrderBy(g => g.Key)
            .Select(g => new RegisteredKey { Key = g.Key, Node = owners.GetValueOrDefault(g.Key, string.Empty), Paths = (uint)g.Count() }));
        return result;
    }

    internal static FenceInfo FenceOf(FenceRow row) =>
        new(Enum.TryParse<FenceMethod>(row.Kind, true, out var method) ? method : FenceMethod.Declared, row.Trigger, row.Reason, row.Since);

    public NodeRecord Register(string name, string address, string agentVersion, IReadOnlyList<string> visibleWwids)
    {
        Validation.NodeName("node_name", name);
        if (string.IsNullOrWhiteSpace(address) || address.Length > 255)
        {
            throw ControllerException.Invalid("address must be the agent's host:port.");
        }

        // Assigned durably before the first reply that carries it (the key must never change under a node).
        var key = ReservationKey.ForNodeNumber(_store.ReservationNumber(name));
        var record = _nodes.AddOrUpdate(name,
            _ => new NodeRecord(name, address, NodeLiveness.Ready, agentVersion, _time.GetUtcNow(), visibleWwids, [], HealthState.Unspecified, []) { Key = key },
            (_, old) => old with
            {
                Key = key,
                Address = address,
                AgentVersion = agentVersion,
                LastHeartbeat = _time.GetUtcNow(),
                VisibleWwids = visibleWwids,
                // A fenced node stays fenced until an operator resumes it, even if its agent comes back.
                State = old.State is NodeLiveness.Fenced or NodeLiveness.Draining ? old.State : NodeLiveness.Ready,
            });
        _store.SaveNode(new NodeRow(name, address, record.State.ToString(), agentVersion));
        ControllerLog.Registered(_logger, name, address, record.State);
        _events.NodeChanged(record, AttachedVolumeIds(name), $"Node {name} registered from {address} ({record.State}).");
        return record;
    }

    /// <summary>Records a heartbeat; false when the node is unknown (it must register again).</summary>
    public bool Heartbeat(string name, IReadOnlyList<string> activeLvs, IReadOnlyList<string> visibleWwids, HealthState health, IReadOnlyList<HealthFinding> findings,
        IReadOnlyList<LuReservations>? reservations = null)
    {
        Validation.NodeName("node_name", name);
        if (!_nodes.TryGetValue(name, out var old))
        {
            return false;
        }

        var updated = old with
        {
            LastHeartbeat = _time.GetUtcNow(),
            ActiveLvs = activeLvs,
            VisibleWwids = visibleWwids,
            Health = health,
            Findings = findings,
            Reservations = reservations ?? [],
            State = old.State == NodeLiveness.Unreachable ? NodeLiveness.Ready : old.State,
        };
        _nodes[name] = updated;
        if (old.State == NodeLiveness.Unreachable)
        {
            _store.SaveNode(new NodeRow(name, updated.Address, updated.State.ToString(), updated.AgentVersion));
            _events.NodeChanged(updated, AttachedVolumeIds(name), $"Node {name} is reachable again.");
        }

        CheckDoubleActivation(name, activeLvs);
        return true;
    }

    public NodeRecord SetState(string name, NodeLiveness state, string reason)
    {
        var node = Get(name);
        var updated = node with { State = state };
        _nodes[name] = updated;
        _store.SaveNode(new NodeRow(name, node.Address, state.ToString(), node.AgentVersion));
        ControllerLog.StateChanged(_logger, name, node.State, state, reason);
        _events.NodeChanged(updated, AttachedVolumeIds(name), $"Node {name}: {node.State} -> {state}. {reason}".Trim());
        return updated;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            CheckLiveness();
        }
    }

    /// <summary>Marks READY nodes that missed <see cref="MissedHeartbeatsBeforeUnreachable"/> heartbeats UNREACHABLE.</summary>
    public void CheckLiveness()
    {
        var now = _time.GetUtcNow();
        foreach (var node in _nodes.Values.Where(n => n.State is NodeLiveness.Ready or NodeLiveness.Draining))
        {
            if (node.State == NodeLiveness.Ready && node.LastHeartbeat is { } last && now - last > HeartbeatInterval * MissedHeartbeatsBeforeUnreachable)
            {
                SetState(node.Name, NodeLiveness.Unreachable, $"No heartbeat for {(now - last).TotalSeconds:0} s; its volumes stay pinned to it until it returns or is fenced.");
            }
        }
    }

    /// <summary>
    /// Invariant 2, checked cluster-wide from what agents report: an LV active on two nodes is the
    /// failure that silently corrupts data. Seen within one heartbeat interval. Only volumes of
    /// managed pools count (nodes built from one image all have a local ubuntu-vg/ubuntu-lv active,
    /// which is no alarm), and a volume legitimately multi-attached to exactly the nodes that have it
    /// active (a live migration) is silent.
    /// </summary>
    private void CheckDoubleActivation(string reporter, IReadOnlyList<string> activeLvs)
    {
        foreach (var lv in activeLvs)
        {
            if (ManagedVolume(lv) is not { } volume)
            {
                continue;
            }

            var others = _nodes.Values.Where(n => n.Name != reporter && n.State != NodeLiveness.Fenced && n.ActiveLvs.Contains(lv, StringComparer.Ordinal)).Select(n => n.Name).ToArray();
            if (others.Length == 0 || (volume.MultiAttach && others.Append(reporter).All(volume.IsOwnedBy)))
            {
                continue;
            }

            Interlocked.Increment(ref _doubleActivations);
            ControllerLog.DoubleActivation(_logger, lv, reporter, string.Join(", ", others));
            _events.Alarm(lv, $"LV {lv} is active on {reporter} and on {string.Join(", ", others)} at once: only one node may have it active (invariant 2).");
        }
    }

    /// <summary>The volume behind "vg/lv" when the VG is a managed pool's and the LV one of its volumes.</summary>
    private VolumeRecord? ManagedVolume(string vgLv)
    {
        var slash = vgLv.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || SharedLvm.Contracts.Conventions.VolumeId.FromLvName(vgLv[(slash + 1)..]) is not { } id)
        {
            return null;
        }

        return _pools.Find(id) is var (pool, volume) && string.Equals(pool.VgName, vgLv[..slash], StringComparison.Ordinal) ? volume : null;
    }
}
