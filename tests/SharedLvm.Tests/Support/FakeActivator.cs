using System.Collections.Concurrent;
using SharedLvm.Agent;
using SharedLvm.Agent.Lvm;

namespace SharedLvm.Tests.Support;

/// <summary>
/// Activation without device-mapper, below the agent's IVolumeActivator seam: it tracks state, and
/// refuses an LV not tagged for its node by reading the LV's real tags from the VG, as LVM's
/// activation/volume_list does. The only model of volume_list in the main suite; the SAN lab runs
/// the real one.
/// </summary>
internal sealed class FakeActivator(LoopDevice? lu, string node) : IVolumeActivator
{
    private readonly ConcurrentDictionary<string, ulong> _active = new(StringComparer.Ordinal);

    public HashSet<string> Open { get; } = [];

    public ConcurrentBag<string> Deactivated { get; } = [];

    /// <summary>Activation blocks until cancelled, like lvm stuck on a dead path.</summary>
    public bool Hang { get; set; }

    public int Refreshes { get; private set; }

    public bool IsActive(string vg, string lv) => _active.ContainsKey(vg + "/" + lv);

    public async Task<ActiveDevice> ActivateAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        if (Hang)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        // Without an LU (a cluster with no pool) no LV is tagged for anyone: LVM would refuse them all.
        var (code, output) = lu?.Lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_tags,lv_size", $"{vgName}/{lvName}") ?? (5, string.Empty);
        if (code != 0 || !output.Contains("sharedlvm_owner_" + node, StringComparison.Ordinal))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"LVM refused to activate {vgName}/{lvName}: it is not tagged for this node (volume_list).");
        }

        _active[vgName + "/" + lvName] = ulong.Parse(FirstLine(output).Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1], System.Globalization.CultureInfo.InvariantCulture);
        return Device(vgName, lvName)!;
    }

    public Task RefreshAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        Refreshes++;
        var (_, output) = lu!.Lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_size", $"{vgName}/{lvName}");
        _active[vgName + "/" + lvName] = ulong.Parse(FirstLine(output), System.Globalization.CultureInfo.InvariantCulture);
        return Task.CompletedTask;
    }

    public Task DeactivateAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        Deactivated.Add(vgName + "/" + lvName);
        _active.TryRemove(vgName + "/" + lvName, out _);
        return Task.CompletedTask;
    }

    public Task<ActiveDevice?> DeviceAsync(string vgName, string lvName, CancellationToken cancellationToken) => Task.FromResult(Device(vgName, lvName));

    public Task<IReadOnlyList<string>> OpenersAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<string>>(Open.Contains(lvName) ? ["pid 4242 (qemu-system-x86)"] : []);

    /// <summary>The report line (LoopDevice.Lvm appends lvm's stderr warnings after it).</summary>
    private static string FirstLine(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[0];

    private ActiveDevice? Device(string vg, string lv) =>
        _active.TryGetValue(vg + "/" + lv, out var size) ? new ActiveDevice($"/dev/{vg}/{lv}", SharedLvm.Contracts.Conventions.DmName.Of(vg, lv), 254, 7, size) : null;
}
