using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using SharedLvm.Contracts.V1;
using static SharedLvm.Cli.Connection;
using static SharedLvm.Cli.Printing;

namespace SharedLvm.Cli.Commands;

/// <summary>slvm node: liveness, health by layer, fencing, draining.</summary>
internal static class NodeCommands
{
    public static Command Build(TextWriter stdout, TextWriter stderr)
    {
        var node = new Command("node", "Compute nodes: liveness, health by layer, fencing.");
        var list = new Command("list", "List nodes with state, health and last heartbeat.");
        list.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var response = await api.ListNodesAsync(new ListNodesRequest(), options);
            o.Table(response, response.Nodes, ["NAME", "STATE", "HEALTH", "ADDRESS", "LAST HEARTBEAT", "LUS", "VOLUMES"], n =>
            [
                n.Name, StateWithFence(n), State(n.Health.ToString()), n.Address,
                n.LastHeartbeat is null ? "never" : n.LastHeartbeat.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture),
                n.VisibleWwids.Count.ToString(CultureInfo.InvariantCulture), n.AttachedVolumeIds.Count.ToString(CultureInfo.InvariantCulture),
            ]);
        }));

        var rescanName = new Argument<string>("name") { Description = "Node name." };
        var rescanWwid = new Option<string[]>("--wwid") { Description = "An LU to look for (repeatable): targeted scans, wildcard only as the last resort. None: a wildcard scan of the node's SAN hosts.", AllowMultipleArgumentsPerToken = true };
        var rescanWait = new Option<uint>("--wait") { Description = "Seconds to wait for the LUs' multipath maps (default 30, at most 300)." };
        var rescan = new Command("rescan", "Rescan a node for LUs (after a LUN was mapped to it) and wait for their multipath maps.") { rescanName, rescanWwid, rescanWait };
        rescan.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var request = new RescanNodeRequest { Name = p.GetValue(rescanName)!, WaitSeconds = p.GetValue(rescanWait) };
            request.Wwids.AddRange(p.GetValue(rescanWwid) ?? []);
            var r = await api.RescanNodeAsync(request, options);
            o.Message(r, () =>
            [
                .. r.Scans.Select(s => ("scan", s)), .. r.Appeared.Select(w => ("appeared", w)), .. r.Missing.Select(w => ("missing", w)),
                ("took", $"{r.DurationMs} ms"),
            ]);
            if (r.Missing.Count > 0)
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"not visible as a usable multipath map after the rescan: {string.Join(", ", r.Missing)}"));
            }
        }));
        node.Subcommands.Add(rescan);

        var nameArg = new Argument<string>("name") { Description = "Node name." };
        var get = new Command("get", "Show one node.") { nameArg };
        get.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var n = await api.GetNodeAsync(new GetNodeRequest { Name = p.GetValue(nameArg)! }, options);
            o.Message(n, () =>
            [
                ("name", n.Name), ("state", StateWithFence(n)), ("health", State(n.Health.ToString())), ("address", n.Address),
                .. (n.FenceKind == FenceKind.Unspecified ? [] : (IEnumerable<(string, string)>)[("fence", $"{State(n.FenceKind.ToString())}: {n.FenceReason}"),
                    ("fenced at", n.FencedAt?.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture) ?? "-")]),
                ("reservation key", n.ReservationKey == 0 ? "none" : "0x" + n.ReservationKey.ToString("x", CultureInfo.InvariantCulture)),
                ("agent", n.AgentVersion), ("last heartbeat", n.LastHeartbeat?.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture) ?? "never"),
                .. n.VisibleWwids.Select(w => ("lu", w)), .. n.AttachedVolumeIds.Select(v => ("volume", v)),
            ]);
        }));

        var live = new Option<bool>("--live") { Description = "Ask the agent now instead of showing its last heartbeat." };
        var health = new Command("health", "Health by layer (transport, SCSI, multipath, LVM, LV): where I/O can fail on the node.") { nameArg, live };
        health.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var h = await api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = p.GetValue(nameArg)!, Live = p.GetValue(live) }, options);
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

        var reason = new Option<string>("--reason") { Description = "Why (and, on an LU without persistent reservations, how the node was cut off), for the audit trail.", Required = true };
        var fence = new Command("fence", "Fence a node at the storage: a READY node preempts its reservation key on every pool LU, read back absent; then its volumes are released. On an LU without persistent reservations: declared (you vouch it is cut off), and labelled so.") { nameArg, reason };
        fence.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var n = await api.FenceNodeAsync(new FenceNodeRequest { Name = p.GetValue(nameArg)!, Reason = p.GetValue(reason)! }, options);
            o.Text(n.FenceKind == FenceKind.Storage
                ? $"node {n.Name} is fenced at the storage (its reservation key is preempted; its volumes are released)"
                : $"node {n.Name} is fenced by DECLARATION only (not verified at the storage): {n.FenceReason}");
        }));

        static string StateWithFence(Node n) => n.State == NodeState.Fenced && n.FenceKind != FenceKind.Unspecified
            ? $"{State(n.State.ToString())} ({State(n.FenceKind.ToString())})"
            : State(n.State.ToString());

        var drain = new Command("drain", "Stop new attachments to a node.") { nameArg };
        drain.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            o.Text($"node {(await api.DrainNodeAsync(new DrainNodeRequest { Name = p.GetValue(nameArg)! }, options)).Name} is draining")));

        var resume = new Command("resume", "Return a fenced or draining node to service.") { nameArg };
        resume.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var n = await api.ResumeNodeAsync(new ResumeNodeRequest { Name = p.GetValue(nameArg)! }, options);
            o.Text($"node {n.Name} is {State(n.State.ToString())}");
        }));

        var restart = new Command("multipathd-restart", "Restart multipathd.service on a node (through its agent and systemd), for a multipathd_unit_down finding. Admin only; audited.") { nameArg };
        restart.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var state = await api.RestartNodeMultipathdAsync(new RestartNodeMultipathdRequest { Name = p.GetValue(nameArg)! }, options);
            o.Message(state, () => [("node", p.GetValue(nameArg)!), ("multipathd", $"{state.ActiveState} ({state.SubState})"), ("status", state.StatusText), ("restarts", state.Restarts.ToString(CultureInfo.InvariantCulture))]);
        }));

        foreach (var command in new[] { list, get, health, fence, drain, resume, restart })
        {
            node.Subcommands.Add(command);
        }

        return node;
    }
}
