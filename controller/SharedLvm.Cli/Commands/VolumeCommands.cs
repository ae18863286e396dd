using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using SharedLvm.Contracts.V1;
using static SharedLvm.Cli.Connection;
using static SharedLvm.Cli.Printing;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Cli.Commands;

/// <summary>slvm volume: create, list, resize, snapshot, restore, clone, label, attach, detach, move.</summary>
internal static class VolumeCommands
{
    public static Command Build(TextWriter stdout, TextWriter stderr)
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
            PrintVolume(o, await api.CreateVolumeAsync(request, options));
        }));

        var idArg = new Argument<string>("id") { Description = "Volume id." };
        var get = new Command("get", "Show one volume.") { idArg };
        get.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            PrintVolume(o, await api.GetVolumeAsync(new GetVolumeRequest { Id = p.GetValue(idArg)! }, options))));

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
            var response = await api.ListVolumesAsync(request, options);
            while (p.GetValue(all) && response.NextPageToken.Length > 0)
            {
                request.PageToken = response.NextPageToken;
                var next = await api.ListVolumesAsync(request, options);
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

        var wait = new Option<bool>("--wait") { Description = "Wait until the work is done, showing its progress (a bar on a terminal, a line every 10 s otherwise)." };
        var deleteId = new Argument<string>("id") { Description = "Volume id." };
        var delete = new Command("delete",
            "Delete a detached volume (succeeds if it does not exist). Under the pool's wipe policy (zero by default) the volume stays DELETING while an agent wipes its extents, then it is gone.")
            { deleteId, wait };
        delete.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var id = p.GetValue(deleteId)!;
            await api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = id }, options);
            if (!p.GetValue(wait))
            {
                o.Text($"volume {id} is being deleted (slvm volume get {id} shows the wipe; --wait waits for it)");
                return;
            }

            await WaitAsync(api, o, options, id, VolumeState.Deleting, "wipe");
            o.Text($"volume {id} deleted");
        }));

        var extendId = new Argument<string>("id") { Description = "Volume id." };
        var extendSize = new Argument<string>("size") { Description = "New total size (10G, 512M...)." };
        var extend = new Command("extend", "Grow a volume to a new total size.") { extendId, extendSize };
        extend.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            PrintVolume(o, await api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = p.GetValue(extendId)!, SizeBytes = Sizes.Parse(p.GetValue(extendSize)!) }, options))));

        var sourceArg = new Argument<string>("source-id") { Description = "Source volume id." };
        var newName = new Argument<string>("name") { Description = "Name of the new volume." };
        var cowSize = new Option<string?>("--size") { Description = "COW area size (default 10% of the source)." };
        var snapshot = new Command("snapshot",
            "COW snapshot of a detached volume. Needs device-mapper on the controller host ('slvm pool get' says whether snapshots are available). A snapshot can't be attached: restore it into its origin.")
            { sourceArg, newName, cowSize, labelOption };
        snapshot.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new CreateSnapshotRequest { SourceVolumeId = p.GetValue(sourceArg)!, Name = p.GetValue(newName)!, SizeBytes = p.GetValue(cowSize) is { } s ? Sizes.Parse(s) : 0 };
            request.Labels.Add(ParseLabels(p.GetValue(labelOption)));
            PrintVolume(o, await api.CreateSnapshotAsync(request, options));
        }));

        var snapshotId = new Argument<string>("snapshot-id") { Description = "Snapshot volume id." };
        var restore = new Command("restore",
            "Roll a snapshot's origin back to the snapshot (lvm merges it in on the controller host) and remove the snapshot. Both must be detached; returns when the merge is done, and the pool's other writes wait for it. Run it again after a failure: it resumes.")
            { snapshotId };
        restore.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            PrintVolume(o, await api.RestoreSnapshotAsync(new RestoreSnapshotRequest { SnapshotId = p.GetValue(snapshotId)! }, options))));

        var clone = new Command("clone",
            "New volume with the source's size, whose data an agent on a node that sees the LU copies (direct I/O, rate-capped). The clone is COPYING, with progress, until the copy is done. A plain source must be detached and stay so; a snapshot source may have its origin attached and in use (clone a snapshot to copy a running VM's disk).")
            { sourceArg, newName, labelOption, wait };
        clone.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new CloneVolumeRequest { SourceVolumeId = p.GetValue(sourceArg)!, Name = p.GetValue(newName)! };
            request.Labels.Add(ParseLabels(p.GetValue(labelOption)));
            var created = await api.CloneVolumeAsync(request, options);
            PrintVolume(o, p.GetValue(wait) ? await WaitAsync(api, o, options, created.Id, VolumeState.Copying, "copy") ?? created : created);
        }));

        var labelId = new Argument<string>("id") { Description = "Volume id." };
        var labelPairs = new Argument<string[]>("labels") { Description = "key=value pairs; replaces all labels (none clears them).", Arity = ArgumentArity.ZeroOrMore };
        var label = new Command("label", "Replace a volume's labels.") { labelId, labelPairs };
        label.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new SetVolumeLabelsRequest { Id = p.GetValue(labelId)! };
            request.Labels.Add(ParseLabels(p.GetValue(labelPairs)));
            PrintVolume(o, await api.SetVolumeLabelsAsync(request, options));
        }));

        var attachId = new Argument<string>("id") { Description = "Volume id." };
        var attachNode = new Argument<string>("node") { Description = "Node name." };
        var multi = new Option<bool>("--multi-attach") { Description = "Allow a second node while attached to one (live migration; at most two)." };
        var attach = new Command("attach", "Attach a volume to a node: tag it for the node, then the node's agent activates and refreshes it.") { attachId, attachNode, multi };
        attach.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var a = await api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = p.GetValue(attachId)!, Node = p.GetValue(attachNode)!, MultiAttach = p.GetValue(multi) }, options);
            o.Message(a, () => [("volume", a.VolumeId), ("node", a.Node), ("state", State(a.State.ToString())), ("device", a.Device?.Path ?? "-"), ("size", a.Device is null ? "-" : Sizes.Format(a.Device.SizeBytes))]);
        }));

        var detach = new Command("detach", "Detach a volume from a node; refused while the device is open there.") { attachId, attachNode };
        detach.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            await api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = p.GetValue(attachId)!, Node = p.GetValue(attachNode)! }, options);
            o.Text($"volume {p.GetValue(attachId)} detached from {p.GetValue(attachNode)}");
        }));

        var to = new Option<string>("--to") { Description = "Target node.", Required = true };
        var move = new Command("move", "Detach from the current node, then attach to another: never active on both.") { attachId, to };
        move.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var volume = await api.GetVolumeAsync(new GetVolumeRequest { Id = p.GetValue(attachId)! }, options);
            foreach (var from in volume.Attachments.Select(a => a.Node).Where(n => n != p.GetValue(to)))
            {
                await api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = from }, options);
                o.Text($"detached from {from}");
            }

            var a = await api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = p.GetValue(to)! }, options);
            o.Message(a, () => [("volume", a.VolumeId), ("node", a.Node), ("state", State(a.State.ToString())), ("device", a.Device?.Path ?? "-")]);
        }));

        foreach (var command in new[] { create, get, list, delete, extend, snapshot, restore, clone, label, attach, detach, move })
        {
            volume.Subcommands.Add(command);
        }

        return volume;
    }

    /// <summary>Polls the volume while it is in <paramref name="state"/>, showing progress; the volume after, or null once it is gone.</summary>
    private static async Task<Volume?> WaitAsync(ControllerRpc.ControllerClient api, Output o, CallOptions options, string id, VolumeState state, string what)
    {
        try
        {
            while (true)
            {
                Volume volume;
                try
                {
                    volume = await api.GetVolumeAsync(new GetVolumeRequest { Id = id }, options.WithDeadline(DateTime.UtcNow.AddSeconds(30)));
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
                {
                    return null;
                }

                if (volume.State != state)
                {
                    return volume;
                }

                if (volume.Progress is { DoneBytes: > 0 } p)
                {
                    o.Progress($"{what} {id}", p.DoneBytes, p.TotalBytes, p.BytesPerSecond, p.EtaSeconds);
                }
                else if (volume.Message.Length > 0)
                {
                    o.Status($"{what} {id}", volume.Message);
                }

                await Task.Delay(TimeSpan.FromSeconds(1), options.CancellationToken);
            }
        }
        finally
        {
            o.EndProgress();
        }
    }
}
