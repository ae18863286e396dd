using System.Globalization;
using SharedLvm.Agent.Discovery;
using SharedLvm.Contracts.Conventions;

namespace SharedLvm.Agent.Lvm;

/// <summary>Active LV devices from sysfs, and who holds them open from /proc.</summary>
public sealed class DmDevices
{
    private readonly SysfsTree _sysfs;

    public DmDevices(SysfsTree sysfs)
    {
        _sysfs = sysfs;
    }

    public ActiveDevice? Find(string vgName, string lvName)
    {
        var wanted = DmName.Of(vgName, lvName);
        foreach (var dm in _sysfs.List("sys/block").Where(n => n.StartsWith("dm-", StringComparison.Ordinal)))
        {
            if (_sysfs.Read($"sys/block/{dm}/dm/name") == wanted)
            {
                var numbers = (_sysfs.Read($"sys/block/{dm}/dev") ?? "0:0").Split(':');
                var sectors = ulong.TryParse(_sysfs.Read($"sys/block/{dm}/size"), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 0;
                return new ActiveDevice($"/dev/{vgName}/{lvName}", wanted,
                    int.Parse(numbers[0], CultureInfo.InvariantCulture), int.Parse(numbers[1], CultureInfo.InvariantCulture), sectors * 512);
            }
        }

        return null;
    }

    /// <summary>
    /// The devices an active LV sits on that are not device-mapper ("/dev/sda"), empty when it sits on
    /// maps (the normal case) or is not active here.
    /// </summary>
    public IReadOnlyList<string> NonDmDevicesBeneath(string vgName, string lvName)
    {
        var wanted = DmName.Of(vgName, lvName);
        var dm = _sysfs.List("sys/block").FirstOrDefault(n => n.StartsWith("dm-", StringComparison.Ordinal) && _sysfs.Read($"sys/block/{n}/dm/name") == wanted);
        return dm is null ? [] : DeviceStack.NonDmBeneath(_sysfs, dm).Select(d => "/dev/" + d).ToArray();
    }

    /// <summary>
    /// Processes with the device open, found by scanning /proc/*/fd for links to it: a detach that
    /// would pull a disk from under a running VM is refused, naming the VM's process.
    /// </summary>
    public IReadOnlyList<string> Openers(string vgName, string lvName)
    {
        if (Find(vgName, lvName) is not { } device)
        {
            return [];
        }

        var targets = new[] { $"/dev/dm-{device.Minor}", $"/dev/mapper/{device.DmName}", device.Path };
        var openers = new List<string>();
        foreach (var pid in _sysfs.List("proc").Where(p => p.All(char.IsAsciiDigit)))
        {
            foreach (var fd in _sysfs.List($"proc/{pid}/fd"))
            {
                try
                {
                    var link = new FileInfo(_sysfs.PathOf($"proc/{pid}/fd/{fd}")).LinkTarget;
                    if (link is not null && targets.Contains(link, StringComparer.Ordinal))
                    {
                        openers.Add($"pid {pid} ({_sysfs.Read($"proc/{pid}/comm") ?? "?"})");
                        break;
                    }
                }
                catch (IOException)
                {
                    // The process exited while we looked.
                }
            }
        }

        return openers;
    }
}
