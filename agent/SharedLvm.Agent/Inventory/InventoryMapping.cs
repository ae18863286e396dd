using Google.Protobuf.WellKnownTypes;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;

namespace SharedLvm.Agent.Inventory;

/// <summary>What the node sees (sysfs, multipathd, lvm, device-mapper) as the contract's Inventory.</summary>
public static class InventoryMapping
{
    public static SharedLvm.Contracts.V1.Inventory ToContract(SanSnapshot snapshot, IReadOnlyDictionary<string, DmDeviceState> dm, string nodeName, string agentVersion)
    {
        var view = snapshot.View;
        var inventory = new SharedLvm.Contracts.V1.Inventory
        {
            NodeName = nodeName,
            CollectedAt = Timestamp.FromDateTimeOffset(view.CollectedAt),
            AgentVersion = agentVersion,
        };
        inventory.Hbas.AddRange(view.Hosts.Select(h => new Hba
        {
            Name = "host" + h.Number,
            HostNumber = (uint)h.Number,
            Driver = h.Driver,
            PortName = h.Fc?.PortName ?? string.Empty,
            NodeName = h.Fc?.NodeName ?? string.Empty,
            PortState = h.Fc?.PortState ?? string.Empty,
            Speed = h.Fc?.Speed ?? string.Empty,
        }));
        inventory.ScsiDevices.AddRange(view.Disks.Select(d => new ScsiDevice
        {
            Name = d.Name, Hctl = d.Hctl, Wwid = d.Wwid ?? string.Empty, Vendor = d.Vendor, Model = d.Model,
            State = d.State, SizeBytes = d.SizeBytes, Holder = d.Holder ?? string.Empty,
        }));
        inventory.MultipathMaps.AddRange(view.Maps.Select(ToContract));
        if (snapshot.Lvm is { } lvm)
        {
            inventory.PhysicalVolumes.AddRange(lvm.VolumeGroups.SelectMany(r => r.PhysicalVolumes).Select(pv => new PhysicalVolume
            {
                Device = pv.Name, VgName = pv.VgName, SizeBytes = pv.SizeBytes,
                Wwid = view.Maps.FirstOrDefault(m => pv.Name.EndsWith(m.Wwid, StringComparison.OrdinalIgnoreCase))?.Wwid ?? string.Empty,
            }));
            inventory.VolumeGroups.AddRange(lvm.VolumeGroups.Select(r => r.VolumeGroup.Name));
        }

        inventory.ActiveLvs.AddRange(view.ActiveLvs.Select(l => ToContract(l, dm.GetValueOrDefault(l.DmName), snapshot.Lvm)));
        return inventory;
    }

    private static MultipathMap ToContract(MultipathMapInfo m)
    {
        var map = new MultipathMap { Wwid = m.Wwid, Name = m.Name, DmDevice = m.DmDevice, SizeBytes = m.SizeBytes, Queueing = m.Queueing, Suspended = m.Suspended };
        map.Paths.AddRange(m.Paths.Select(p => new MultipathPath
        {
            Device = p.Device,
            Hctl = p.Hctl,
            State = p.Status switch { PathStatus.Active => PathState.Active, PathStatus.Standby => PathState.Standby, _ => PathState.Failed },
            DmState = p.DmState,
            CheckerState = p.CheckerState,
        }));
        return map;
    }

    private static LvActivation ToContract(ActiveLv lv, DmDeviceState? dm, LvmView? lvm)
    {
        var names = DmName.Split(lv.DmName);
        var metadata = names is var (vg, name) ? lvm?.Find(vg, name) : null;
        var activation = new LvActivation
        {
            VgName = names?.Vg ?? string.Empty,
            LvName = names?.Lv ?? string.Empty,
            MetadataSizeBytes = metadata?.SizeBytes ?? 0,
            Device = new DevicePath { DmName = lv.DmName, Major = (uint)Math.Max(0, lv.Major), Minor = (uint)Math.Max(0, lv.Minor), SizeBytes = lv.SizeBytes },
            TableStale = metadata is not null && metadata.SizeBytes != lv.SizeBytes,
            Suspended = lv.Suspended,
            DmTable = dm?.Table ?? string.Empty,
            OpenCount = (uint)(dm?.OpenCount ?? 0),
        };
        activation.Tags.AddRange(metadata?.Tags ?? []);
        activation.Shared = OwnerTag.IsShared(activation.Tags);
        return activation;
    }
}
