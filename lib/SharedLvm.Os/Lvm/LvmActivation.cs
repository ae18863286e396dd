using SharedLvm.Os.Processes;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// The activation verbs, and nothing that writes metadata: what an agent may ask of lvm besides
/// reads. -ay and --refresh run under the config's activation/volume_list, so LVM itself refuses an
/// LV that is not tagged for the node.
/// </summary>
public sealed class LvmActivation
{
    private readonly LvmCommand _lvm;

    public LvmActivation(IProcessRunner runner, LvmConfig config, TimeSpan timeout, string binary = "lvm")
    {
        _lvm = new LvmCommand(runner, config.ForReads(), timeout, binary);
    }

    public LvmConfig Config => _lvm.Config;

    public Task ActivateAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        _lvm.RunAsync("lvchange", ["-ay", vgName + "/" + lvName], cancellationToken);

    /// <summary>Reloads the active table from the current metadata (after an extend made elsewhere).</summary>
    public Task RefreshAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        _lvm.RunAsync("lvchange", ["--refresh", vgName + "/" + lvName], cancellationToken);

    public Task DeactivateAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        _lvm.RunAsync("lvchange", ["-an", vgName + "/" + lvName], cancellationToken);
}
