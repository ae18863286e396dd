using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using SharedLvm.Contracts.V1;
using static SharedLvm.Cli.Connection;
using static SharedLvm.Cli.Printing;

namespace SharedLvm.Cli.Commands;

/// <summary>slvm pool: one VG on one shared LU.</summary>
internal static class PoolCommands
{
    public static Command Build(TextWriter stdout, TextWriter stderr)
    {
        var pool = new Command("pool", "Pools: one VG on one shared LU.");

        var name = new Argument<string>("name") { Description = "Pool name (also the VG name)." };
        var device = new Option<string?>("--device") { Description = "Device path of the LU on the controller host (tests, lab)." };
        var wwid = new Option<string?>("--wwid") { Description = "LU WWID: nodes find it as the multipath map mpath-<wwid>; the controller writes through /dev/mapper/<wwid> unless --device is given too." };
        var adopt = new Option<bool>("--adopt") { Description = "Take over an existing VG instead of initialising a blank LU." };
        var metadata = new Option<string?>("--metadata-size") { Description = "PV metadata area (default 128M, ~10,000+ volumes; can't grow later)." };
        var extent = new Option<string?>("--extent-size") { Description = "VG extent size (default 4M)." };
        var wipe = new Option<string?>("--wipe-on-delete")
        {
            Description = "What a deleted volume's extents get before reuse: zero (default: an agent zeroes them), discard (where the LU guarantees zeros after a discard, else zero), none (no wipe: the next volume may read old data).",
        };
        var create = new Command("create", "Initialise a pool on a blank LU, or adopt an existing VG.") { name, device, wwid, adopt, metadata, extent, wipe };
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
                WipeOnDelete = p.GetValue(wipe) is { } w ? ParseWipe(w) : WipePolicy.Unspecified,
            };
            PrintPool(o, await api.CreatePoolAsync(request, options));
        }));

        var setName = new Argument<string>("name") { Description = "Pool name." };
        var setWipe = new Option<string>("--wipe-on-delete") { Description = "zero, discard or none (see pool create --help).", Required = true };
        var set = new Command("set", "Change a pool's policies (admin). Volumes already being wiped finish as they started.") { setName, setWipe };
        set.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            PrintPool(o, await api.UpdatePoolAsync(new UpdatePoolRequest { Name = p.GetValue(setName)!, WipeOnDelete = ParseWipe(p.GetValue(setWipe)!) }, options))));

        var list = new Command("list", "List pools with capacity and metadata-area use.");
        list.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            var response = await api.ListPoolsAsync(new ListPoolsRequest(), options);
            o.Table(response, response.Pools, ["NAME", "DEVICE", "SIZE", "FREE", "VOLUMES", "METADATA FREE", "HEALTH"], x =>
            [
                x.Name, x.DevicePath, Sizes.Format(x.SizeBytes), Sizes.Format(x.FreeBytes), x.VolumeCount.ToString(CultureInfo.InvariantCulture),
                $"{Sizes.Format(x.MetadataFreeBytes)} of {Sizes.Format(x.MetadataSizeBytes / 2)}", State(x.Health.ToString()),
            ]);
        }));

        var getName = new Argument<string>("name") { Description = "Pool name." };
        var get = new Command("get", "Show one pool.") { getName };
        get.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
            PrintPool(o, await api.GetPoolAsync(new GetPoolRequest { Name = p.GetValue(getName)! }, options))));

        var forgetName = new Argument<string>("name") { Description = "Pool name." };
        var forget = new Command("forget", "Stop managing a pool; the VG stays on the LU untouched.") { forgetName };
        forget.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            await api.ForgetPoolAsync(new ForgetPoolRequest { Name = p.GetValue(forgetName)! }, options);
            o.Text($"pool {p.GetValue(forgetName)} forgotten");
        }));

        pool.Subcommands.Add(create);
        pool.Subcommands.Add(list);
        pool.Subcommands.Add(get);
        pool.Subcommands.Add(set);
        pool.Subcommands.Add(forget);
        return pool;
    }

    private static WipePolicy ParseWipe(string text) => text.ToLowerInvariant() switch
    {
        "zero" => WipePolicy.Zero,
        "discard" => WipePolicy.Discard,
        "none" => WipePolicy.None,
        _ => throw new FormatException($"--wipe-on-delete '{text}' is not one of: zero, discard, none."),
    };
}
