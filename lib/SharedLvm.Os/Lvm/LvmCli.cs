using System.Globalization;
using SharedLvm.Os.Processes;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// The only class that knows the lvm binary exists (topolvm's internal/lvmd/command). Every call
/// passes the full <see cref="LvmConfig"/>, fixed units, LC_ALL=C (through the runner) and a timeout.
/// Names reach lvm as argv entries, never through a shell.
/// </summary>
public sealed class LvmCli
{
    private const string VgFields = "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_free_count,vg_seqno,lv_count,vg_mda_size,vg_mda_free,vg_tags,vg_autoactivation";
    private const string PvFields = "pv_name,pv_uuid,vg_name,pv_size,dev_size";
    private const string LvFields = "vg_name,lv_name,lv_uuid,lv_size,lv_tags,lv_attr,origin,lv_time,lv_kernel_major,lv_kernel_minor,lv_autoactivation";

    private static readonly IReadOnlyDictionary<string, string> Environment = new Dictionary<string, string>
    {
        // lvm complains about every inherited descriptor of a daemon; the warnings drown real errors.
        ["LVM_SUPPRESS_FD_WARNINGS"] = "1",
    };

    private readonly IProcessRunner _runner;
    private readonly string _binary;

    public LvmCli(IProcessRunner runner, LvmConfig config, TimeSpan timeout, string binary = "lvm")
    {
        _runner = runner;
        Config = config;
        Timeout = timeout;
        _binary = binary;
    }

    public LvmConfig Config { get; }

    public TimeSpan Timeout { get; }

    public Task PvCreateAsync(string device, ulong metadataSizeBytes, CancellationToken cancellationToken) =>
        RunAsync("pvcreate", ["--metadatasize", Bytes(metadataSizeBytes), device], cancellationToken);

    public Task VgCreateAsync(string vgName, string device, ulong extentSizeBytes, CancellationToken cancellationToken) =>
        RunAsync("vgcreate", ["--setautoactivation", "n", "--physicalextentsize", Bytes(extentSizeBytes), vgName, device], cancellationToken);

    /// <summary>
    /// Creates an inactive LV: -an (the controller never activates), -Zn (zeroing needs an active
    /// device), --setautoactivation n (Proxmox bug #4997: hosts auto-activated shared LVs at boot
    /// and a stale dm map blocked a recreated LV).
    /// </summary>
    public Task LvCreateAsync(string vgName, string lvName, ulong sizeBytes, IEnumerable<string> tags, CancellationToken cancellationToken) =>
        RunAsync("lvcreate", ["-an", "-Zn", "--setautoactivation", "n", "--yes", "-L", Bytes(sizeBytes), "-n", lvName, .. TagArguments("--addtag", tags), vgName], cancellationToken);

    /// <summary>COW snapshot. LVM needs device-mapper for this even with -an: on a host without it
    /// this fails with <see cref="LvmErrorKind.NeedsDeviceMapper"/>.</summary>
    public Task LvSnapshotAsync(string vgName, string originLv, string snapshotLv, ulong cowSizeBytes, IEnumerable<string> tags, CancellationToken cancellationToken) =>
        RunAsync("lvcreate", ["-an", "--yes", "-s", "-L", Bytes(cowSizeBytes), "-n", snapshotLv, .. TagArguments("--addtag", tags), vgName + "/" + originLv], cancellationToken);

    public Task LvRemoveAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        RunAsync("lvremove", ["--yes", vgName + "/" + lvName], cancellationToken);

    public Task LvExtendAsync(string vgName, string lvName, ulong sizeBytes, CancellationToken cancellationToken) =>
        RunAsync("lvextend", ["-L", Bytes(sizeBytes), vgName + "/" + lvName], cancellationToken);

    public Task LvChangeTagsAsync(string vgName, string lvName, IEnumerable<string> add, IEnumerable<string> remove, CancellationToken cancellationToken) =>
        RunAsync("lvchange", [.. TagArguments("--addtag", add), .. TagArguments("--deltag", remove), vgName + "/" + lvName], cancellationToken);

    /// <summary>lvchange without metadata changes: -ay, -an, --refresh (the agent's only lvm actions).</summary>
    public Task LvChangeAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        RunAsync("lvchange", arguments, cancellationToken);

    public Task VgCheckAsync(string vgName, CancellationToken cancellationToken) =>
        RunAsync("vgck", [vgName], cancellationToken);

    /// <summary>One call for the whole VG: vg, pv and lv rows (segment sections trimmed to one column).</summary>
    public async Task<FullReport> FullReportAsync(string vgName, CancellationToken cancellationToken) =>
        (await FullReportsAsync([vgName], cancellationToken).ConfigureAwait(false)).SingleOrDefault()
            ?? throw new LvmException("fullreport", 5, $"Volume group \"{vgName}\" not found");

    /// <summary>Every VG lvm can see through the configured device filter (no names: all of them).</summary>
    public Task<IReadOnlyList<FullReport>> FullReportsAsync(CancellationToken cancellationToken) =>
        FullReportsAsync([], cancellationToken);

    /// <summary>`lvm version` first line, e.g. "2.03.16(2) (2022-05-18)".</summary>
    public async Task<string> VersionAsync(CancellationToken cancellationToken)
    {
        var output = await RunAsync("version", [], cancellationToken).ConfigureAwait(false);
        var line = output.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("LVM version:", StringComparison.Ordinal)) ?? string.Empty;
        return line.Split(':', 2).ElementAtOrDefault(1)?.Trim() ?? string.Empty;
    }

    /// <summary>Values of the host's lvm.conf settings (lvmconfig), as lvm reports them.</summary>
    public async Task<IReadOnlyDictionary<string, string>> HostConfigAsync(IEnumerable<string> settings, CancellationToken cancellationToken)
    {
        var result = await _runner.RunAsync(new ProcessSpec(_binary, ["lvmconfig", "--typeconfig", "full", .. settings]) { Timeout = Timeout, Environment = Environment }, cancellationToken).ConfigureAwait(false);
        return result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.Ordinal);
    }

    private async Task<IReadOnlyList<FullReport>> FullReportsAsync(IReadOnlyList<string> vgNames, CancellationToken cancellationToken)
    {
        var output = await RunAsync("fullreport",
        [
            "--reportformat", "json", "--units", "b", "--nosuffix",
            "--configreport", "vg", "-o", VgFields,
            "--configreport", "pv", "-o", PvFields,
            "--configreport", "lv", "-o", LvFields,
            "--configreport", "pvseg", "-o", "pvseg_start",
            "--configreport", "seg", "-o", "seg_start",
            .. vgNames,
        ], cancellationToken).ConfigureAwait(false);
        return LvmReportParser.ParseFullReport(output);
    }

    /// <summary>Writes the VG's current metadata text to backup_dir (a read of the VG, a local file write).</summary>
    public Task VgCfgBackupAsync(string vgName, CancellationToken cancellationToken) =>
        RunAsync("vgcfgbackup", [vgName], cancellationToken);

    /// <summary>The VG's summary row only: cheap enough to poll for foreign writers.</summary>
    public async Task<VolumeGroup> VgsAsync(string vgName, CancellationToken cancellationToken)
    {
        var output = await RunAsync("vgs", ["--reportformat", "json", "--units", "b", "--nosuffix", "-o", VgFields, vgName], cancellationToken)
            .ConfigureAwait(false);
        return LvmReportParser.ParseVgs(output).SingleOrDefault()
            ?? throw new LvmException("vgs", 5, $"Volume group \"{vgName}\" not found");
    }

    /// <summary>Reads a device's PV label, or null when it carries none.</summary>
    public async Task<string?> PvVgNameAsync(string device, CancellationToken cancellationToken)
    {
        try
        {
            var output = await RunAsync("pvs", ["--reportformat", "json", "-o", "pv_name,vg_name", device], cancellationToken).ConfigureAwait(false);
            using var json = System.Text.Json.JsonDocument.Parse(output);
            var row = json.RootElement.GetProperty("report")[0].GetProperty("pv").EnumerateArray().FirstOrDefault();
            return row.ValueKind == System.Text.Json.JsonValueKind.Undefined ? null : row.GetProperty("vg_name").GetString() ?? string.Empty;
        }
        catch (LvmException e) when (e.ExitCode == 5)
        {
            return null;
        }
    }

    private async Task<string> RunAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var spec = new ProcessSpec(_binary, [command, "--config", Config.Render(), .. arguments])
        {
            Timeout = Timeout,
            Environment = Environment,
        };
        var result = await _runner.RunAsync(spec, cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new LvmException(command, result.ExitCode, result.StandardError);
        }

        return result.StandardOutput;
    }

    private static IEnumerable<string> TagArguments(string flag, IEnumerable<string> tags) =>
        tags.SelectMany(t => new[] { flag, t });

    /// <summary>Sizes are always given in bytes ("b" suffix) so no unit or rounding is implied.</summary>
    private static string Bytes(ulong value) => value.ToString(CultureInfo.InvariantCulture) + "b";
}
