using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Attachments;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.Fencing;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.Telemetry;
using SharedLvm.Controller.Volumes;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;
using DomainCreateMode = SharedLvm.Controller.Pools.PoolCreateMode;

namespace SharedLvm.Controller.Api;

/// <summary>
/// sharedlvm.v1.Controller: messages in, domain services, messages out. Nothing else: input checks
/// live in the domain, exceptions become statuses in <see cref="ControllerStatusMapper"/>.
/// </summary>
public sealed class ControllerService(
    PoolRegistry pools,
    VolumeService volumes,
    AttachmentService attachments,
    NodeDirectory nodes,
    NodeFencing fencing,
    NodeHealthService health,
    EventBus events,
    ControllerMetrics metrics,
    ControllerOptions options,
    ControllerEpoch epoch,
    IWriterLease lease,
    SnapshotSupport snapshots,
    FaultInjector faults) : ControllerRpc.ControllerBase
{
    private const int DefaultPageSize = 100;
    private const int MaxPageSize = 1000;

    public override async Task<Pool> CreatePool(CreatePoolRequest request, ServerCallContext context)
    {
        var mode = request.Mode switch
        {
            Contracts.V1.PoolCreateMode.Initialize => DomainCreateMode.Initialize,
            Contracts.V1.PoolCreateMode.Adopt => DomainCreateMode.Adopt,
            _ => throw ControllerException.Invalid("mode must be INITIALIZE or ADOPT."),
        };
        var runtime = await pools.CreateAsync(
            new CreatePoolCommand(request.Name, request.Wwid, request.DevicePath, mode, request.MetadataSizeBytes, request.ExtentSizeBytes, WipeOnDeleteOf(request.WipeOnDelete)),
            context.CancellationToken);
        var pool = Shown(runtime);
        events.Publish(EventKind.PoolChanged, pool.Name, $"Pool {pool.Name} is managed on {pool.DevicePath}.", e => e.Pool = pool);
        return pool;
    }

    public override async Task<Pool> UpdatePool(UpdatePoolRequest request, ServerCallContext context)
    {
        Validation.PoolName("name", request.Name);
        if (request.WipeOnDelete == WipePolicy.Unspecified)
        {
            throw ControllerException.Invalid("wipe_on_delete must be ZERO, DISCARD or NONE.");
        }

        var pool = Shown(pools.SetWipeOnDelete(request.Name, WipeOnDeleteOf(request.WipeOnDelete)));
        await lease.SaveMarksAsync(context.CancellationToken);
        events.Publish(EventKind.PoolChanged, pool.Name, $"Pool {pool.Name}: wipe_on_delete is now {pool.WipeOnDelete}.", e => e.Pool = pool);
        return pool;
    }

    private static WipeOnDelete WipeOnDeleteOf(WipePolicy policy) => policy switch
    {
        WipePolicy.Discard => WipeOnDelete.Discard,
        WipePolicy.None => WipeOnDelete.None,
        _ => WipeOnDelete.Zero,
    };

    public override Task<Pool> GetPool(GetPoolRequest request, ServerCallContext context)
    {
        Validation.PoolName("name", request.Name);
        return Task.FromResult(Shown(pools.Get(request.Name)));
    }

    public override Task<ListPoolsResponse> ListPools(ListPoolsRequest request, ServerCallContext context) =>
        Task.FromResult(new ListPoolsResponse { Pools = { pools.All.Select(Shown) } });

    /// <summary>A pool as shown: the catalogue's view, its LU's reservations as the nodes see them, and whether snapshots work here.</summary>
    private Pool Shown(PoolRuntime runtime)
    {
        var pool = runtime.ToContract(options.MetadataWarnFreeFraction);
        pool.Reservations = nodes.ReservationsOf(pool.Wwid);
        pool.SnapshotsUnavailable = snapshots.UnavailableReason ?? string.Empty;
        return pool;
    }

    public override async Task<ForgetPoolResponse> ForgetPool(ForgetPoolRequest request, ServerCallContext context)
    {
        await pools.ForgetAsync(request.Name);
        return new ForgetPoolResponse();
    }

    public override Task<Volume> CreateVolume(CreateVolumeRequest request, ServerCallContext context) => metrics.Measure("create", async () =>
        View(await volumes.CreateAsync(new CreateVolumeCommand(request.Pool, request.Name, request.SizeBytes, Copy(request.Labels)), context.CancellationToken)));

    public override Task<Volume> GetVolume(GetVolumeRequest request, ServerCallContext context) =>
        Task.FromResult(View(volumes.Get(request.Id, request.Pool, request.Name)));

    public override Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context)
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

        if (request.Node.Length > 0)
        {
            Validation.NodeName("node", request.Node);
        }

        var catalogs = request.Pool.Length > 0 ? [pools.Get(request.Pool).Catalog] : pools.All.Select(p => p.Catalog);
        var filter = new VolumeFilter(ContractMapping.FromContract(request.State), Copy(request.LabelSelector), request.Node.Length > 0 ? request.Node : null);
        var page = VolumeQuery.Page(catalogs, filter, request.PageToken, request.PageSize == 0 ? DefaultPageSize : (int)request.PageSize);
        var response = new ListVolumesResponse { Total = (uint)page.Total, NextPageToken = page.NextPageToken };
        response.Volumes.AddRange(page.Volumes.Select(x => x.Volume.ToContract(x.Catalog)));
        return Task.FromResult(response);
    }

    public override Task<DeleteVolumeResponse> DeleteVolume(DeleteVolumeRequest request, ServerCallContext context) => metrics.Measure("delete", async () =>
    {
        await volumes.DeleteAsync(request.Id, context.CancellationToken);
        return new DeleteVolumeResponse();
    });

    /// <summary>For an attached volume the reply comes only after every owner's device has the new size.</summary>
    public override Task<Volume> ExtendVolume(ExtendVolumeRequest request, ServerCallContext context) => metrics.Measure("extend", async () =>
    {
        var volume = await volumes.ExtendAsync(request.Id, request.SizeBytes, context.CancellationToken);
        if (volume.Owners.Count > 0)
        {
            await attachments.RefreshOwnersAsync(volume.Id, context.CancellationToken);
        }

        return View(volume);
    });

    public override Task<Attachment> AttachVolume(AttachVolumeRequest request, ServerCallContext context) => metrics.Measure("attach", async () =>
        (await attachments.AttachAsync(request.VolumeId, request.Node, request.MultiAttach, context.CancellationToken)).ToContract());

    public override Task<DetachVolumeResponse> DetachVolume(DetachVolumeRequest request, ServerCallContext context) => metrics.Measure("detach", async () =>
    {
        await attachments.DetachAsync(request.VolumeId, request.Node, context.CancellationToken);
        return new DetachVolumeResponse();
    });

    public override Task<Volume> CreateSnapshot(CreateSnapshotRequest request, ServerCallContext context) => metrics.Measure("snapshot", async () =>
        View(await volumes.SnapshotAsync(request.SourceVolumeId, request.Name, request.SizeBytes, Copy(request.Labels), context.CancellationToken)));

    public override Task<Volume> RestoreSnapshot(RestoreSnapshotRequest request, ServerCallContext context) => metrics.Measure("restore", async () =>
        View(await volumes.RestoreAsync(request.SnapshotId, context.CancellationToken)));

    public override Task<Volume> CloneVolume(CloneVolumeRequest request, ServerCallContext context) => metrics.Measure("clone", async () =>
        View(await volumes.CloneAsync(request.SourceVolumeId, request.Name, Copy(request.Labels), context.CancellationToken)));

    public override Task<Volume> SetVolumeLabels(SetVolumeLabelsRequest request, ServerCallContext context) => metrics.Measure("set_labels", async () =>
        View(await volumes.SetLabelsAsync(request.Id, Copy(request.Labels), context.CancellationToken)));

    public override Task<Node> GetNode(GetNodeRequest request, ServerCallContext context) => Task.FromResult(View(nodes.Get(request.Name)));

    public override Task<ListNodesResponse> ListNodes(ListNodesRequest request, ServerCallContext context) =>
        Task.FromResult(new ListNodesResponse { Nodes = { nodes.All.Select(View) } });

    /// <summary>Fence = preempt the node's key at the storage; declared (and labelled so) only where the LU has no PR.</summary>
    public override async Task<Node> FenceNode(FenceNodeRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Reason))
        {
            throw ControllerException.Invalid("reason is required: say why the node is fenced (e.g. \"hung, ticket 1234\"); on an LU without persistent reservations, how it was cut off.");
        }

        return View(await fencing.FenceAsync(request.Name, request.Reason, FenceTrigger.Operator, context.CancellationToken));
    }

    public override async Task<Node> DrainNode(DrainNodeRequest request, ServerCallContext context)
    {
        var node = nodes.SetState(request.Name, NodeLiveness.Draining, "Draining: no new attachments.");
        faults.Hit("drain.after_state");
        await lease.SaveMarksAsync(context.CancellationToken);
        return View(node);
    }

    public override async Task<Node> ResumeNode(ResumeNodeRequest request, ServerCallContext context)
    {
        var node = nodes.Resume(request.Name);
        faults.Hit("resume.after_state");
        await lease.SaveMarksAsync(context.CancellationToken);
        return View(node);
    }

    public override Task<MultipathdState> RestartNodeMultipathd(RestartNodeMultipathdRequest request, ServerCallContext context) =>
        health.RestartMultipathdAsync(request.Name, context.CancellationToken);

    public override Task<RescanNodeResponse> RescanNode(RescanNodeRequest request, ServerCallContext context) =>
        health.RescanAsync(request.Name, request.Wwids, request.WaitSeconds, context.CancellationToken);

    public override Task<NodeHealth> GetNodeHealth(GetNodeHealthRequest request, ServerCallContext context) =>
        health.GetAsync(request.Name, request.Live, context.CancellationToken);

    public override Task<ControllerStatus> GetControllerStatus(GetControllerStatusRequest request, ServerCallContext context) =>
        Task.FromResult(new ControllerStatus
        {
            Active = lease.IsActive,
            Epoch = epoch.ToContract(),
            Lease = options.Lease,
            HostId = options.HostId,
            Address = options.AdvertisedAddress,
            ActiveAddress = lease.ActiveAddress ?? string.Empty,
            Pools = (uint)pools.KnownCount,
        });

    public override async Task WatchEvents(WatchEventsRequest request, IServerStreamWriter<Event> responseStream, ServerCallContext context)
    {
        await foreach (var e in events.WatchAsync(request.AfterSequence, request.Kinds.ToHashSet(), context.CancellationToken))
        {
            await responseStream.WriteAsync(e, context.CancellationToken);
        }
    }

    private static Dictionary<string, string> Copy(IReadOnlyDictionary<string, string> labels) => new(labels, StringComparer.Ordinal);

    private Node View(NodeRecord record) => record.ToContract(nodes.AttachedVolumeIds(record.Name));

    private Volume View(VolumeRecord record) => record.ToContract(pools.Get(record.Pool).Catalog);
}
