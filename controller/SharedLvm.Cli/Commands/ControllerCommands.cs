using System.CommandLine;
using System.Globalization;
using SharedLvm.Contracts.V1;
using static SharedLvm.Cli.Connection;

namespace SharedLvm.Cli.Commands;

/// <summary>slvm controller: which controller writes, under which epoch.</summary>
internal static class ControllerCommands
{
    public static Command Build(TextWriter stdout, TextWriter stderr)
    {
        var controller = new Command("controller", "The controllers: which one is active (holds the writer lease), the standbys, the epoch.");
        var status = new Command("status", "Show the controller reached (standbys answer this too): active or standby, its epoch, its lease, and the active controller's address.");
        status.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var s = await api.GetControllerStatusAsync(new GetControllerStatusRequest(), options);
            o.Message(s, () =>
            [
                ("address", s.Address), ("role", s.Active ? "active" : "standby"),
                ("epoch", $"{s.Epoch?.Value.ToString(CultureInfo.InvariantCulture) ?? "0"} ({s.Epoch?.ControllerId})"),
                ("lease", s.Lease), ("host id", s.HostId.ToString(CultureInfo.InvariantCulture)),
                ("active controller", s.ActiveAddress.Length > 0 ? s.ActiveAddress : "unknown"),
                ("pools", s.Pools.ToString(CultureInfo.InvariantCulture)),
            ]);
        }));
        controller.Subcommands.Add(status);
        return controller;
    }
}
