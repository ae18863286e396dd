using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Cli;

/// <summary>
/// The command tree. Exit codes: 0 success; 1-16 the gRPC status code of a failed call (5 NOT_FOUND,
/// 6 ALREADY_EXISTS, 9 FAILED_PRECONDITION, 14 UNAVAILABLE...); 64 bad usage.
/// </summary>
internal static class SlvmCommands
{
    public const int UsageError = 64;
    public const string DefaultController = "127.0.0.1:7400";

    private static readonly Option<string?> ControllerOption = new("--controller")
    {
        Description = "Controller address: host:port (https when a CA is given, else http) or a URL. Else $SLVM_CONTROLLER, ~/.config/sharedlvm/slvm.json or /etc/sharedlvm/slvm.json {\"controller\": ...}, else " + DefaultController + ".",
        Recursive = true,
    };

    private static readonly Option<string?> CaOption = new("--ca")
    {
        Description = "Cluster CA certificate: turns on TLS and verifies the controller. Else $SLVM_CA or \"ca\" in slvm.json.",
        Recursive = true,
    };

    private static readonly Option<string?> CertOption = new("--cert")
    {
        Description = "Client certificate from scripts/pki client NAME ROLE. Else $SLVM_CERT or \"cert\". Without one, $SLVM_TOKEN (a bearer token; never on the command line, where ps shows it).",
        Recursive = true,
    };

    private static readonly Option<string?> KeyOption = new("--key") { Description = "The client certificate's key. Else $SLVM_KEY or \"key\".", Recursive = true };

    private static readonly Option<bool> JsonOption = new("--json") { Description = "Print JSON (proto3 mapping) for scripts.", Recursive = true };

    private static readonly Option<double> TimeoutOption = new("--timeout") { Description = "Seconds to wait for the controller.", DefaultValueFactory = _ => 120, Recursive = true };

    public static RootCommand Build(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("slvm: manage SharedLvm pools and volumes through the controller API.");
        root.Options.Add(ControllerOption);
        root.Options.Add(JsonOption);
        root.Options.Add(TimeoutOption);
        root.Options.Add(CaOption);
        root.Options.Add(CertOption);
        root.Options.Add(KeyOption);
        root.Subcommands.Add(PoolCommands(stdout, stderr));
        root.Subcommands.Add(VolumeCommands(stdout, stderr));
        root.Subcommands.Add(NodeCommands(stdout, stderr));
        root.Subcommands.Add(EventCommands(stdout, stderr));
        return root;
    }

    private static Command PoolCommands(TextWriter stdout, TextWriter stderr)
    {
        var pool = new Command("pool", "Pools: one VG on one shared LU.");

        var name = new Argument<string>("name") { Description = "Pool name (also the VG name)." };
        var device = new Option<string?>("--device") { Description = "Device path of the LU on the controller host (tests, lab)." };
        var wwid = new Option<string?>("--wwid") { Description = "LU WWID: nodes find it as the multipath map mpath-<wwid>; the controller writes through /dev/mapper/<wwid> unless --device is given too." };
        var adopt = new Option<bool>("--adopt") { Description = "Take over an existing VG instead of initialising a blank LU." };
        var metadata = new Option<string?>("--metadata-size") { Description = "PV metadata area (default 128M, ~10,000+ volumes; can't grow later)." };
        var extent = new Option<string?>("--extent-size") { Description = "VG extent size (default 4M)." };
        var create = new Command("create", "Initialise a pool on a blank LU, or adopt an existing VG.") { name, device, wwid, adopt, metadata, extent };
        create.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new CreatePoolRequest
            {
                Name = p.GetValue(name)!,
                DevicePath = p.GetValue(device) ?? string.Empty,
                Wwid = p.GetValue(wwid) ?? string.Empty,
                Mode = p.GetValue(adopt) ? PoolCreateMode.Adopt : PoolCreateMode.Initialize,
                MetadataSizeBytes = p.GetValue(metadata) is { } m ? Sizes.Parse(m) : 0,
                ExtentSizeBytes = p.GetValue(extent) is { } e ? Sizes.Parse(e) : 0,
            };
            PrintPool(o, await api.CallAsync<Pool>(request, options));
        }));

        var list = new Command("list", "List pools with capacity and metadata-area use.");
        list.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var response = await api.CallAsync<ListPoolsResponse>(new ListPoolsRequest(), options);
            o.Table(response, response.Pools, ["NAME", "DEVICE", "SIZE", "FREE", "VOLUMES", "METADATA FREE", "HEALTH"], x =>
            [
                x.Name, x.DevicePath, Sizes.Format(x.SizeBytes), Sizes.Format(x.FreeBytes), x.VolumeCount.ToString(CultureInfo.InvariantCulture),
                $"{Sizes.Format(x.MetadataFreeBytes)} of {Sizes.Format(x.MetadataSizeBytes / 2)}", State(x.Health.ToString()),
            ]);
        }));

        var getName = new Argument<string>("name") { Description = "Pool name." };
        var get = new Command("get", "Show one pool.") { getName };
        get.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            PrintPool(o, await api.CallAsync<Pool>(new GetPoolRequest { Name = p.GetValue(getName)! }, options))));

        var forgetName = new Argument<string>("name") { Description = "Pool name." };
        var forget = new Command("forget", "Stop managing a pool; the VG stays on the LU untouched.") { forgetName };
        forget.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            await api.CallAsync<ForgetPoolResponse>(new ForgetPoolRequest { Name = p.GetValue(forgetName)! }, options);
            o.Text($"pool {p.GetValue(forgetName)} forgotten");
        }));

        pool.Subcommands.Add(create);
        pool.Subcommands.Add(list);
        pool.Subcommands.Add(get);
        pool.Subcommands.Add(forget);
        return pool;
    }

    private static Command VolumeCommands(TextWriter stdout, TextWriter stderr)
    {
        var volume = new Command("volume", "Volumes: one LV each.");
        var labelOption = new Option<string[]>("--label") { Description = "A label key=value (repeat for more)." };

        var poolArg = new Argument<string>("pool") { Description = "Pool name." };
        var nameArg = new Argument<string>("name") { Description = "Volume name, unique in the pool; creating it again with the same size returns it." };
        var sizeArg = new Argument<string>("size") { Description = "Size: 10G, 512M, or bytes; rounded up to the extent size." };
        var create = new Command("create", "Create a volume (idempotent by name).") { poolArg, nameArg, sizeArg, labelOption };
        create.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new CreateVolumeRequest { Pool = p.GetValue(poolArg)!, Name = p.GetValue(nameArg)!, SizeBytes = Sizes.Parse(p.GetValue(sizeArg)!) };
            request.Labels.Add(ParseLabels(p.GetValue(labelOption)));
            PrintVolume(o, await api.CallAsync<Volume>(request, options));
        }));

        var idArg = new Argument<string>("id") { Description = "Volume id." };
        var get = new Command("get", "Show one volume.") { idArg };
        get.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            PrintVolume(o, await api.CallAsync<Volume>(new GetVolumeRequest { Id = p.GetValue(idArg)! }, options))));

        var poolFilter = new Option<string?>("--pool") { Description = "Only this pool." };
        var stateFilter = new Option<string?>("--state") { Description = "Only this state (available, attached, copying...)." };
        var nodeFilter = new Option<string?>("--node") { Description = "Only volumes attached to this node." };
        var all = new Option<bool>("--all") { Description = "Fetch every page (default: first 100)." };
        var list = new Command("list", "List volumes, filtered by pool, state, labels (--label k=v) or node.") { poolFilter, stateFilter, nodeFilter, labelOption, all };
        list.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new ListVolumesRequest { Pool = p.GetValue(poolFilter) ?? string.Empty, Node = p.GetValue(nodeFilter) ?? string.Empty };
            if (p.GetValue(stateFilter) is { } state)
            {
                request.State = Enum.TryParse<VolumeState>(state.Replace("_", string.Empty, StringComparison.Ordinal), ignoreCase: true, out var parsed) && parsed != VolumeState.Unspecified
                    ? parsed
                    : throw new FormatException($"--state '{state}' is not one of: {string.Join(", ", Enum.GetNames<VolumeState>().Skip(1).Select(n => n.ToLowerInvariant()))}.");
            }

            request.LabelSelector.Add(ParseLabels(p.GetValue(labelOption)));
            var response = await api.CallAsync<ListVolumesResponse>(request, options);
            while (p.GetValue(all) && response.NextPageToken.Length > 0)
            {
                request.PageToken = response.NextPageToken;
                var next = await api.CallAsync<ListVolumesResponse>(request, options);
                response.Volumes.AddRange(next.Volumes);
                response.NextPageToken = next.NextPageToken;
            }

            o.Table(response, response.Volumes, ["ID", "NAME", "POOL", "SIZE", "STATE", "NODES"], v =>
                [v.Id, v.Name, v.Pool, Sizes.Format(v.SizeBytes), State(v.State.ToString()), string.Join(",", v.Attachments.Select(a => a.Node))]);
            if (response.NextPageToken.Length > 0)
            {
                o.Text($"({response.Volumes.Count} of {response.Total}; --all for the rest)");
            }
        }));

        var deleteId = new Argument<string>("id") { Description = "Volume id." };
        var delete = new Command("delete", "Delete a detached volume (succeeds if it does not exist).") { deleteId };
        delete.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            await api.CallAsync<DeleteVolumeResponse>(new DeleteVolumeRequest { Id = p.GetValue(deleteId)! }, options);
            o.Text($"volume {p.GetValue(deleteId)} deleted");
        }));

        var extendId = new Argument<string>("id") { Description = "Volume id." };
        var extendSize = new Argument<string>("size") { Description = "New total size (10G, 512M...)." };
        var extend = new Command("extend", "Grow a volume to a new total size.") { extendId, extendSize };
        extend.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            PrintVolume(o, await api.CallAsync<Volume>(new ExtendVolumeRequest { Id = p.GetValue(extendId)!, SizeBytes = Sizes.Parse(p.GetValue(extendSize)!) }, options))));

        var sourceArg = new Argument<string>("source-id") { Description = "Source volume id." };
        var newName = new Argument<string>("name") { Description = "Name of the new volume." };
        var cowSize = new Option<string?>("--size") { Description = "COW area size (default 10% of the source)." };
        var snapshot = new Command("snapshot", "COW snapshot of a detached volume.") { sourceArg, newName, cowSize, labelOption };
        snapshot.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new CreateSnapshotRequest { SourceVolumeId = p.GetValue(sourceArg)!, Name = p.GetValue(newName)!, SizeBytes = p.GetValue(cowSize) is { } s ? Sizes.Parse(s) : 0 };
            request.Labels.Add(ParseLabels(p.GetValue(labelOption)));
            PrintVolume(o, await api.CallAsync<Volume>(request, options));
        }));

        var clone = new Command("clone", "New volume with the source's size; data copied by an agent.") { sourceArg, newName, labelOption };
        clone.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new CloneVolumeRequest { SourceVolumeId = p.GetValue(sourceArg)!, Name = p.GetValue(newName)! };
            request.Labels.Add(ParseLabels(p.GetValue(labelOption)));
            PrintVolume(o, await api.CallAsync<Volume>(request, options));
        }));

        var labelId = new Argument<string>("id") { Description = "Volume id." };
        var labelPairs = new Argument<string[]>("labels") { Description = "key=value pairs; replaces all labels (none clears them).", Arity = ArgumentArity.ZeroOrMore };
        var label = new Command("label", "Replace a volume's labels.") { labelId, labelPairs };
        label.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new SetVolumeLabelsRequest { Id = p.GetValue(labelId)! };
            request.Labels.Add(ParseLabels(p.GetValue(labelPairs)));
            PrintVolume(o, await api.CallAsync<Volume>(request, options));
        }));

        var attachId = new Argument<string>("id") { Description = "Volume id." };
        var attachNode = new Argument<string>("node") { Description = "Node name." };
        var multi = new Option<bool>("--multi-attach") { Description = "Allow a second node while attached to one (live migration; at most two)." };
        var attach = new Command("attach", "Attach a volume to a node: tag it for the node, then the node's agent activates and refreshes it.") { attachId, attachNode, multi };
        attach.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var a = await api.CallAsync<Attachment>(new AttachVolumeRequest { VolumeId = p.GetValue(attachId)!, Node = p.GetValue(attachNode)!, MultiAttach = p.GetValue(multi) }, options);
            o.Message(a, () => [("volume", a.VolumeId), ("node", a.Node), ("state", State(a.State.ToString())), ("device", a.Device?.Path ?? "-"), ("size", a.Device is null ? "-" : Sizes.Format(a.Device.SizeBytes))]);
        }));

        var detach = new Command("detach", "Detach a volume from a node; refused while the device is open there.") { attachId, attachNode };
        detach.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            await api.CallAsync<DetachVolumeResponse>(new DetachVolumeRequest { VolumeId = p.GetValue(attachId)!, Node = p.GetValue(attachNode)! }, options);
            o.Text($"volume {p.GetValue(attachId)} detached from {p.GetValue(attachNode)}");
        }));

        var to = new Option<string>("--to") { Description = "Target node.", Required = true };
        var move = new Command("move", "Detach from the current node, then attach to another: never active on both.") { attachId, to };
        move.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var volume = await api.CallAsync<Volume>(new GetVolumeRequest { Id = p.GetValue(attachId)! }, options);
            foreach (var from in volume.Attachments.Select(a => a.Node).Where(n => n != p.GetValue(to)))
            {
                await api.CallAsync<DetachVolumeResponse>(new DetachVolumeRequest { VolumeId = volume.Id, Node = from }, options);
                o.Text($"detached from {from}");
            }

            var a = await api.CallAsync<Attachment>(new AttachVolumeRequest { VolumeId = volume.Id, Node = p.GetValue(to)! }, options);
            o.Message(a, () => [("volume", a.VolumeId), ("node", a.Node), ("state", State(a.State.ToString())), ("device", a.Device?.Path ?? "-")]);
        }));

        foreach (var command in new[] { create, get, list, delete, extend, snapshot, clone, label, attach, detach, move })
        {
            volume.Subcommands.Add(command);
        }

        return volume;
    }

    private static Command NodeCommands(TextWriter stdout, TextWriter stderr)
    {
        var node = new Command("node", "Compute nodes: liveness, health by layer, fencing.");
        var list = new Command("list", "List nodes with state, health and last heartbeat.");
        list.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var response = await api.CallAsync<ListNodesResponse>(new ListNodesRequest(), options);
            o.Table(response, response.Nodes, ["NAME", "STATE", "HEALTH", "ADDRESS", "LAST HEARTBEAT", "LUS", "VOLUMES"], n =>
            [
                n.Name, State(n.State.ToString()), State(n.Health.ToString()), n.Address,
                n.LastHeartbeat is null ? "never" : n.LastHeartbeat.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture),
                n.VisibleWwids.Count.ToString(CultureInfo.InvariantCulture), n.AttachedVolumeIds.Count.ToString(CultureInfo.InvariantCulture),
            ]);
        }));

        var nameArg = new Argument<string>("name") { Description = "Node name." };
        var get = new Command("get", "Show one node.") { nameArg };
        get.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var n = await api.CallAsync<Node>(new GetNodeRequest { Name = p.GetValue(nameArg)! }, options);
            o.Message(n, () =>
            [
                ("name", n.Name), ("state", State(n.State.ToString())), ("health", State(n.Health.ToString())), ("address", n.Address),
                ("agent", n.AgentVersion), ("last heartbeat", n.LastHeartbeat?.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture) ?? "never"),
                .. n.VisibleWwids.Select(w => ("lu", w)), .. n.AttachedVolumeIds.Select(v => ("volume", v)),
            ]);
        }));

        var live = new Option<bool>("--live") { Description = "Ask the agent now instead of showing its last heartbeat." };
        var health = new Command("health", "Health by layer (transport, SCSI, multipath, LVM, LV): where I/O can fail on the node.") { nameArg, live };
        health.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var h = await api.CallAsync<NodeHealth>(new GetNodeHealthRequest { Name = p.GetValue(nameArg)!, Live = p.GetValue(live) }, options);
            var rows = Enum.GetValues<Layer>().Skip(1).Select(layer =>
            {
                var findings = h.Findings.Where(f => f.Layer == layer).ToList();
                var worst = findings.Count == 0 ? "ok" : State(findings.Max(f => f.State).ToString());
                return (layer, worst, findings);
            }).ToList();
            o.Table(h, rows, ["LAYER", "STATE", "FINDINGS"], r =>
                [State(r.layer.ToString()), r.worst, r.findings.Count == 0 ? "-" : string.Join("; ", r.findings.Select(f => $"{f.Code}: {f.Message}"))]);
            o.Text($"node {h.Node}: {State(h.Overall.ToString())}");
        }));

        var reason = new Option<string>("--reason") { Description = "How the node was fenced (power off, SAN port disabled...), for the audit trail.", Required = true };
        var fence = new Command("fence", "Declare a node fenced (cut off the SAN by something outside SharedLvm); only then may its volumes move.") { nameArg, reason };
        fence.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            o.Text($"node {(await api.CallAsync<Node>(new FenceNodeRequest { Name = p.GetValue(nameArg)!, Reason = p.GetValue(reason)! }, options)).Name} is fenced")));

        var drain = new Command("drain", "Stop new attachments to a node.") { nameArg };
        drain.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            o.Text($"node {(await api.CallAsync<Node>(new DrainNodeRequest { Name = p.GetValue(nameArg)! }, options)).Name} is draining")));

        var resume = new Command("resume", "Return a fenced or draining node to service.") { nameArg };
        resume.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var n = await api.CallAsync<Node>(new ResumeNodeRequest { Name = p.GetValue(nameArg)! }, options);
            o.Text($"node {n.Name} is {State(n.State.ToString())}");
        }));

        foreach (var command in new[] { list, get, health, fence, drain, resume })
        {
            node.Subcommands.Add(command);
        }

        return node;
    }

    private static Command EventCommands(TextWriter stdout, TextWriter stderr)
    {
        var events = new Command("events", "Controller events.");
        var after = new Option<ulong>("--after") { Description = "Replay retained events after this sequence number first." };
        var watch = new Command("watch", "Stream events until interrupted.") { after };
        watch.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            await foreach (var e in api.StreamAsync<Event>(new WatchEventsRequest { AfterSequence = p.GetValue(after) }, options with { Timeout = null }))
            {
                if (o.Json)
                {
                    stdout.WriteLine(Google.Protobuf.JsonFormatter.Default.Format(e));
                }
                else
                {
                    stdout.WriteLine($"{e.Sequence,6} {e.Time.ToDateTimeOffset():O} {e.Kind,-26} {e.Subject} {e.Message}");
                }
            }
        }));
        events.Subcommands.Add(watch);
        return events;
    }

    private static async Task<int> Run(ParseResult parse, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken,
        Func<GrpcServiceClient, Output, CallOptions, Task> action)
    {
        string address;
        TransportSecurity security;
        try
        {
            var ca = Setting(parse.GetValue(CaOption), "SLVM_CA", "ca");
            address = ResolveController(parse.GetValue(ControllerOption), tls: ca is not null);
            var cert = Setting(parse.GetValue(CertOption), "SLVM_CERT", "cert");
            var key = Setting(parse.GetValue(KeyOption), "SLVM_KEY", "key");
            security = ca is null
                ? TransportSecurity.Plaintext
                : new TransportSecurity(cert is null ? ClusterTls.TrustOnly(ca) : ClusterTls.Load(new TlsFiles(ca, cert, key ?? Path.ChangeExtension(cert, ".key"))));
        }
        catch (Exception e) when (e is FormatException or TlsConfigurationException or ArgumentException)
        {
            await stderr.WriteLineAsync("slvm: " + e.Message);
            return UsageError;
        }

        using var _ = security;
        using var channel = security.Dial(address, PeerRoles.Controller, refused: why => stderr.WriteLine("slvm: the controller's certificate is refused: " + why));
        var api = new GrpcServiceClient(channel, ControllerReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.ServiceDescriptor>("Controller"));
        var options = new CallOptions
        {
            Timeout = TimeSpan.FromSeconds(parse.GetValue(TimeoutOption)),
            CancellationToken = cancellationToken,
            Headers = Environment.GetEnvironmentVariable("SLVM_TOKEN") is { Length: > 0 } token
                ? new Dictionary<string, string>(StringComparer.Ordinal) { ["authorization"] = "Bearer " + token }
                : null,
        };
        try
        {
            await action(api, new Output(stdout, parse.GetValue(JsonOption)), options);
            return 0;
        }
        catch (RpcException e)
        {
            await stderr.WriteLineAsync($"slvm: {GrpcProtocol.StatusName(e.StatusCode)}: {e.Status.Detail}");
            return (int)e.StatusCode;
        }
        catch (FormatException e)
        {
            await stderr.WriteLineAsync("slvm: " + e.Message);
            return UsageError;
        }
    }

    internal static string ResolveController(string? flag, bool tls = false)
    {
        var address = flag ?? Environment.GetEnvironmentVariable("SLVM_CONTROLLER") ?? FromConfigFiles("controller") ?? DefaultController;
        if (!address.Contains("://", StringComparison.Ordinal))
        {
            address = (tls ? "https://" : "http://") + address;
        }

        return Uri.TryCreate(address, UriKind.Absolute, out _) ? address : throw new FormatException($"controller address '{address}' is not a URL.");
    }

    /// <summary>A setting from its flag, else its environment variable, else slvm.json.</summary>
    private static string? Setting(string? flag, string variable, string key) =>
        flag ?? (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value : null) ?? FromConfigFiles(key);

    private static string? FromConfigFiles(string key)
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        foreach (var path in new[] { Path.Combine(home, ".config", "sharedlvm", "slvm.json"), "/etc/sharedlvm/slvm.json" })
        {
            if (File.Exists(path))
            {
                using var document = JsonDocument.Parse(File.ReadAllText(path));
                if (document.RootElement.TryGetProperty(key, out var value) && value.GetString() is { Length: > 0 } setting)
                {
                    return setting;
                }
            }
        }

        return null;
    }

    private static Dictionary<string, string> ParseLabels(string[]? pairs) =>
        (pairs ?? []).Select(pair =>
        {
            var split = pair.IndexOf('=', StringComparison.Ordinal);
            return split > 0 ? (pair[..split], pair[(split + 1)..]) : throw new FormatException($"label '{pair}' is not key=value.");
        }).ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal);

    private static void PrintPool(Output o, Pool x) => o.Message(x, () =>
    [
        ("name", x.Name), ("device", x.DevicePath), ("wwid", x.Wwid), ("size", Sizes.Format(x.SizeBytes)), ("free", Sizes.Format(x.FreeBytes)),
        ("extent size", Sizes.Format(x.ExtentSizeBytes)), ("volumes", x.VolumeCount.ToString(CultureInfo.InvariantCulture)),
        ("metadata free", $"{Sizes.Format(x.MetadataFreeBytes)} of {Sizes.Format(x.MetadataSizeBytes / 2)} usable"),
        ("seqno", x.Seqno.ToString(CultureInfo.InvariantCulture)), ("health", State(x.Health.ToString())),
        .. x.Warnings.Select(w => ("warning", w)),
    ]);

    private static void PrintVolume(Output o, Volume v) => o.Message(v, () =>
    [
        ("id", v.Id), ("name", v.Name), ("pool", v.Pool), ("size", $"{Sizes.Format(v.SizeBytes)} ({v.SizeBytes.ToString(CultureInfo.InvariantCulture)} bytes)"),
        ("state", State(v.State.ToString())), ("kind", v.Kind.ToString().ToLowerInvariant()), ("device", $"/dev/{v.VgName}/{v.LvName}"),
        .. v.SourceVolumeId.Length > 0 ? [("source", v.SourceVolumeId)] : Array.Empty<(string, string)>(),
        .. v.Attachments.Select(a => ("attached", $"{a.Node} ({State(a.State.ToString())})")),
        .. v.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => ("label", $"{l.Key}={l.Value}")),
        .. v.Message.Length > 0 ? [("message", v.Message)] : Array.Empty<(string, string)>(),
    ]);

    private static string State(string enumName) => enumName.ToLowerInvariant();
}
