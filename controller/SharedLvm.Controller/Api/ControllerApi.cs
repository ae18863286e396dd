using SharedLvm.Contracts.V1;
using Google.Protobuf.WellKnownTypes;
using SharedLvm.Controller.Attachments;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.Telemetry;
using SharedLvm.Controller.Volumes;
using SharedLvm.Grpc;
using static SharedLvm.Controller.Api.StatusMapping;

namespace SharedLvm.Controller.Api;

/// <summary>sharedlvm.v1.Controller: a thin adapter from messages to the domain services.</summary>
public sealed class ControllerApi
{
    private const int DefaultPageSize = 100;
    private const int MaxPageSize = 1000;

    /// <summary>A live health call must answer while an LU is blocked; the agent itself waits at most 5 s for lvm.</summary>
    private static readonly TimeSpan LiveHealthTimeout = TimeSpan.FromSeconds(15);
    private readonly PoolRegistry _pools;
    private readonly VolumeService _volumes;
    private readonly EventBus _events;
    private readonly ControllerOptions _options;
    private readonly NodeDirectory _nodes;
    private readonly AttachmentService _attachments;
    private readonly ControllerMetrics _metrics;
    private readonly AgentClients _agents;

    internal ControllerApi(PoolRegistry pools, VolumeService volumes, EventBus events, ControllerOptions options, NodeDirectory nodes, AttachmentService attachments, ControllerMetrics metrics, AgentClients agents)
    {
        _agents = agents;
        _metrics = metrics;
        _attachments = attachments;
        _pools = pools;
        _volumes = volumes;
        _events = events;
        _options = options;
        _nodes = nodes;
    }

    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor => ControllerReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.ServiceDescriptor>("Controller");

    public Task<Pool> CreatePool(CreatePoolRequest request, ServerCallContext context) => Guard(async () =>
    {
        var mode = request.Mode switch
        {
            Contracts.V1.PoolCreateMode.Initialize => Pools.PoolCreateMode.Initialize,
            Contracts.V1.PoolCreateMode.Adopt => Pools.PoolCreateMode.Adopt,
            _ => throw ControllerException.Invalid("mode must be INITIALIZE or ADOPT."),
        };
        var runtime = await _pools.CreateAsync(
            new CreatePoolCommand(request.Name, request.Wwid, request.DevicePath, mode, request.MetadataSizeBytes, request.ExtentSizeBytes),
            _volumes.ReconcileAsync, context.CancellationToken);
        var pool = runtime.ToContract(_options.MetadataWarnFreeFraction);
        _events.Publish(EventKind.PoolChanged, pool.Name, $"Pool {pool.Name} is managed on {pool.DevicePath}.", e => e.Pool = pool);
        return pool;
    });

    public Task<Pool> GetPool(GetPoolRequest request, ServerCallContext context) => Guard(() =>
    {
        Validation.PoolName("name", request.Name);
        return Task.FromResult(_pools.Get(request.Name).ToContract(_options.MetadataWarnFreeFraction));
    });

    public Task<ListPoolsResponse> ListPools(ListPoolsRequest request, ServerCallContext context)
    {
        var response = new ListPoolsResponse();
        response.Pools.AddRange(_pools.All.Select(p => p.ToContract(_options.MetadataWarnFreeFraction)));
        return Task.FromResult(response);
    }

    public Task<ForgetPoolResponse> ForgetPool(ForgetPoolRequest request, ServerCallContext context) => Guard(async () =>
    {
        Validation.PoolName("name", request.Name);
        if (_pools.TryGet(request.Name, out var pool) && pool.Catalog.Snapshot().FirstOrDefault(v => v.Owners.Count > 0) is { } attached)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Pool {request.Name} has attached volumes (e.g. {attached.Id} on {attached.Owners[0]}); detach them first.");
        }

        await _pools.ForgetAsync(request.Name);
        return new ForgetPoolResponse();
    });

    public Task<Volume> CreateVolume(CreateVolumeRequest request, ServerCallContext context) => _metrics.Measure("create", () => Guard(async () =>
        View(await _volumes.CreateAsync(new CreateVolumeCommand(request.Pool, request.Name, request.SizeBytes, Copy(request.Labels)), context.CancellationToken))));

    public Task<Volume> GetVolume(GetVolumeRequest request, ServerCallContext context) => Guard(() =>
        Task.FromResult(View(_volumes.Get(request.Id, request.Pool, request.Name))));

    public Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context) => Guard(() =>
    {
        if (request.PageSize > MaxPageSize)
        {
            throw ControllerException.Invalid($"page_size must be at most {MaxPageSize}.");
        }

        if (request.PageToken.Length > 0)
        {
            Validation.Id("page_token", request.PageToken);
        }

        if (request.Pool.Length > 0)
        {
            Validation.PoolName("pool", request.Pool);
        }

        // Filter and page on the catalogue's records; only the page is mapped to messages, so a
        // list stays cheap at 10,000 volumes (reads never run lvm).
        var pools = request.Pool.Length > 0 ? [_pools.Get(request.Pool)] : _pools.All;
        var matches = pools.SelectMany(p => p.Catalog.Snapshot())
            .Where(v => request.LabelSelector.All(s => v.Labels.TryGetValue(s.Key, out var value) && string.Equals(value, s.Value, StringComparison.Ordinal)))
            .Where(v => request.Node.Length == 0 || v.Owners.Contains(request.Node, StringComparer.Ordinal))
            .Where(v => request.State == VolumeState.Unspecified || ContractMapping.ToContract(_volumes.StateOf(v)) == request.State);
        if (pools.Count > 1)
        {
            matches = matches.OrderBy(v => v.Id, StringComparer.Ordinal);
        }

        var all = matches.ToList();
        var pageSize = request.PageSize == 0 ? DefaultPageSize : (int)request.PageSize;
        var start = request.PageToken.Length == 0 ? 0 : all.FindIndex(v => string.CompareOrdinal(v.Id, request.PageToken) > 0);
        var response = new ListVolumesResponse { Total = (uint)all.Count };
        if (start >= 0)
        {
            var page = all.Skip(start).Take(pageSize).ToList();
            response.Volumes.AddRange(page.Select(View));
            if (start + page.Count < all.Count)
            {
                response.NextPageToken = page[^1].Id;
            }
        }

        return Task.FromResult(response);
    });

    public Task<DeleteVolumeResponse> DeleteVolume(DeleteVolumeRequest request, ServerCallContext context) => _metrics.Measure("delete", () => Guard(async () =>
    {
        await _volumes.DeleteAsync(request.Id, context.CancellationToken);
        return new DeleteVolumeResponse();
    }));

    /// <summary>For an attached volume the reply comes only after every owner's device has the new size.</summary>
    public Task<Volume> ExtendVolume(ExtendVolumeRequest request, ServerCallContext context) => _metrics.Measure("extend", () => Guard(async () =>
    {
        var volume = await _volumes.ExtendAsync(request.Id, request.SizeBytes, context.CancellationToken);
        if (volume.Owners.Count > 0)
        {
            await _attachments.RefreshOwnersAsync(volume.Id, context.CancellationToken);
        }

        return View(volume);
    }));

    public Task<Attachment> AttachVolume(AttachVolumeRequest request, ServerCallContext context) => _metrics.Measure("attach", () => Guard(async () =>
        ToContract(await _attachments.AttachAsync(request.VolumeId, request.Node, request.MultiAttach, context.CancellationToken))));

    public Task<DetachVolumeResponse> DetachVolume(DetachVolumeRequest request, ServerCallContext context) => _metrics.Measure("detach", () => Guard(async () =>
    {
        await _attachments.DetachAsync(request.VolumeId, request.Node, context.CancellationToken);
        return new DetachVolumeResponse();
    }));

    public Task<Volume> CreateSnapshot(CreateSnapshotRequest request, ServerCallContext context) => _metrics.Measure("snapshot", () => Guard(async () =>
        View(await _volumes.SnapshotAsync(request.SourceVolumeId, request.Name, request.SizeBytes, Copy(request.Labels), context.CancellationToken))));

    public Task<Volume> CloneVolume(CloneVolumeRequest request, ServerCallContext context) => _metrics.Measure("clone", () => Guard(async () =>
        View(await _volumes.CloneAsync(request.SourceVolumeId, request.Name, Copy(request.Labels), context.CancellationToken))));

    public Task<Volume> SetVolumeLabels(SetVolumeLabelsRequest request, ServerCallContext context) => _metrics.Measure("set_labels", () => Guard(async () =>
        View(await _volumes.SetLabelsAsync(request.Id, Copy(request.Labels), context.CancellationToken))));

    public Task<Node> GetNode(GetNodeRequest request, ServerCallContext context) => Guard(() => Task.FromResult(View(_nodes.Get(request.Name))));

    public Task<ListNodesResponse> ListNodes(ListNodesRequest request, ServerCallContext context)
    {
        var response = new ListNodesResponse();
        response.Nodes.AddRange(_nodes.All.Select(View));
        return Task.FromResult(response);
    }

    /// <summary>Only for a node that something outside SharedLvm has really cut off the SAN.</summary>
    public Task<Node> FenceNode(FenceNodeRequest request, ServerCallContext context) => Guard(() =>
    {
        if (string.IsNullOrWhiteSpace(request.Reason))
        {
            throw ControllerException.Invalid("reason is required: say how the node was fenced (e.g. \"IPMI power off, ticket 1234\").");
        }

        return Task.FromResult(View(_nodes.SetState(request.Name, NodeLiveness.Fenced, "Fenced: " + request.Reason)));
    });

    public Task<Node> DrainNode(DrainNodeRequest request, ServerCallContext context) => Guard(() =>
        Task.FromResult(View(_nodes.SetState(request.Name, NodeLiveness.Draining, "Draining: no new attachments."))));

    public Task<Node> ResumeNode(ResumeNodeRequest request, ServerCallContext context) => Guard(() =>
    {
        var node = _nodes.Get(request.Name);
        var fresh = node.LastHeartbeat is { } last && DateTimeOffset.UtcNow - last < _nodes.HeartbeatInterval * NodeDirectory.MissedHeartbeatsBeforeUnreachable;
        return Task.FromResult(View(_nodes.SetState(request.Name, fresh ? NodeLiveness.Ready : NodeLiveness.Unreachable, "Resumed by an operator.")));
    });

    public Task<NodeHealth> GetNodeHealth(GetNodeHealthRequest request, ServerCallContext context) => Guard(async () =>
    {
        var node = _nodes.Get(request.Name);
        var health = new NodeHealth { Node = node.Name, Overall = node.Health };
        if (request.Live)
        {
            var live = await _agents.For(node.Name, node.Address).CallAsync<GetHealthResponse>(new GetHealthRequest(), new CallOptions { Timeout = LiveHealthTimeout, CancellationToken = context.CancellationToken });
            health.Overall = live.Overall;
            health.Findings.AddRange(live.Findings);
            health.ReportedAt = live.CollectedAt;
            return health;
        }

        health.Findings.AddRange(node.Findings);
        if (node.LastHeartbeat is { } at)
        {
            health.ReportedAt = Timestamp.FromDateTimeOffset(at);
        }

        return health;
    });

    public async Task WatchEvents(WatchEventsRequest request, IServerStreamWriter<Event> responseStream, ServerCallContext context)
    {
        try
        {
            await foreach (var e in _events.WatchAsync(request.AfterSequence, request.Kinds.ToHashSet(), context.CancellationToken))
            {
                await responseStream.WriteAsync(e, context.CancellationToken);
            }
        }
        catch (InvalidOperationException e)
        {
            throw new RpcException(StatusCode.ResourceExhausted, e.Message);
        }
    }

    private static Dictionary<string, string> Copy(IReadOnlyDictionary<string, string> labels) => new(labels, StringComparer.Ordinal);

    private Node View(NodeRecord record)
    {
        var node = new Node
        {
            Name = record.Name,
            Address = record.Address,
            State = record.State switch
            {
                NodeLiveness.Ready => NodeState.Ready,
                NodeLiveness.Fenced => NodeState.Fenced,
                NodeLiveness.Draining => NodeState.Draining,
                _ => NodeState.Unreachable,
            },
            AgentVersion = record.AgentVersion,
            Health = record.Health,
        };
        if (record.LastHeartbeat is { } last)
        {
            node.LastHeartbeat = Timestamp.FromDateTimeOffset(last);
        }

        node.VisibleWwids.AddRange(record.VisibleWwids);
        node.AttachedVolumeIds.AddRange(_pools.All.SelectMany(p => p.Catalog.Snapshot()).Where(v => v.Owners.Contains(record.Name, StringComparer.Ordinal)).Select(v => v.Id));
        return node;
    }

    private Volume View(VolumeRecord record)
    {
        var volume = record.ToContract(_volumes.StateOf(record));
        var attachments = _attachments.Of(record);
        volume.Attachments.Clear();
        volume.Attachments.AddRange(attachments.Select(ToContract));
        if (volume.State == VolumeState.Attached && attachments.Any(a => a.Phase != AttachmentPhase.Attached))
        {
            volume.State = attachments.Any(a => a.Phase == AttachmentPhase.Detaching) ? VolumeState.Detaching : VolumeState.Attaching;
        }

        return volume;
    }

    private static Attachment ToContract(AttachmentRecord record)
    {
        var attachment = new Attachment
        {
            VolumeId = record.VolumeId,
            Node = record.Node,
            State = record.Phase switch
            {
                AttachmentPhase.Attached => AttachmentState.Attached,
                AttachmentPhase.Detaching => AttachmentState.Detaching,
                _ => AttachmentState.Attaching,
            },
            Since = Timestamp.FromDateTimeOffset(record.Since),
        };
        if (record.Device is not null)
        {
            attachment.Device = record.Device;
        }

        return attachment;
    }
}
