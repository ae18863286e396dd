using System.Text.Json;
using SharedLvm.Os.Processes;

namespace SharedLvm.Os.Lvm;

/// <summary>What lvm reports: one JSON fullreport per VG, the VG summary row, PV labels, versions and settings. No verb here changes anything.</summary>
public sealed class LvmReader
{
    private const string VgFields = "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_free_count,vg_seqno,lv_count,vg_mda_size,vg_mda_free,vg_tags,vg_autoactivation";
    private const string PvFields = "pv_name,pv_uuid,vg_name,pv_size,dev_size";
    private const string LvFields = "vg_name,lv_name,lv_uuid,lv_size,lv_tags,lv_attr,origin,lv_time,lv_kernel_major,lv_kernel_minor,lv_autoactivation";

    private readonly LvmCommand _lvm;

    public LvmReader(IProcessRunner runner, LvmConfig config, TimeSpan timeout, string binary = "lvm")
    {
        _lvm = new LvmCommand(runner, config.ForReads(), timeout, binary);
    }

    public LvmConfig Config => _lvm.Config;

    /// <summary>One call for the whole VG: vg, pv and lv rows (segment sections trimmed to one column).</summary>
    public async Task<FullReport> FullReportAsync(string vgName, CancellationToken cancellationToken) =>
        (await FullReportsAsync([vgName], cancellationToken).ConfigureAwait(false)).SingleOrDefault()
            ?? throw new LvmException("fullreport", 5, $"Volume group \"{vgName}\" not found");

    /// <summary>Every VG lvm can see through the configured device filter.</summary>
    public Task<IReadOnlyList<FullReport>> FullReportsAsync(CancellationToken cancellationToken) =>
        FullReportsAsync([], cancellationToken);

    /// <summary>`lvm version` first line, e.g. "2.03.16(2) (2022-05-18)".</summary>
    public async Task<string> VersionAsync(CancellationToken cancellationToken)
    {
        var output = await _lvm.RunAsync("version", [], cancellationToken).ConfigureAwait(false);
        var line = output.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("LVM version:", StringComparison.Ordinal)) ?? string.Empty;
        return line.Split(':', 2).ElementAtOrDefault(1)?.Trim() ?? string.Empty;
    }

    /// <summary>Values of the host's lvm.conf settings (lvmconfig), as lvm reports them.</summary>
    public async Task<IReadOnlyDictionary<string, string>> HostConfigAsync(IEnumerable<string> settings, CancellationToken cancellationToken)
    {
        var result = await _lvm.RunRawAsync(["lvmconfig", "--typeconfig", "full", .. settings], cancellationToken).ConfigureAwait(false);
        return result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.Ordinal);
    }

    /// <summary>Writes the VG's current metadata text to backup_dir (a read of the VG, a local file write).</summary>
    public Task VgCfgBackupAsync(string vgName, CancellationToken cancellationToken) =>
        _lvm.RunAsync("vgcfgbackup", [vgName], cancellationToken);

    /// <summary>The VG's current metadata text as lvm writes it (`vgcfgbackup -f`), through <paramref name="file"/>.</summary>
    public async Task<string> MetadataTextAsync(string vgName, string file, CancellationToken cancellationToken)
    {
        await _lvm.RunAsync("vgcfgbackup", ["-f", file, vgName], cancellationToken).ConfigureAwait(false);
        return await File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The VG's summary row only: cheap enough to poll for foreign writers.</summary>
    public async Task<VolumeGroup> VgsAsync(string vgName, CancellationToken cancellationToken)
    {
        var output = await _lvm.RunAsync("vgs", ["--reportformat", "json", "--units", "b", "--nosuffix", "-o", VgFields, vgName], cancellationToken)
            .ConfigureAwait(false);
        return LvmReportParser.ParseVgs(output).SingleOrDefault()
            ?? throw new LvmException("vgs", 5, $"Volume group \"{vgName}\" not found");
    }

    /// <summary>Where an LV's extents lie on its PV, or null when the LV does not exist.</summary>
    public async Task<LvLayout?> LayoutAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        // The names are LVM names ([a-zA-Z0-9+_.-]): quoted, they are plain strings to lvm's selection parser.
        var output = await _lvm.RunAsync("pvs",
            ["--segments", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", LvLayoutParser.Fields,
             "--select", $"vg_name=\"{vgName}\" && lv_name=\"{lvName}\""], cancellationToken).ConfigureAwait(false);
        return LvLayoutParser.Parse(output);
    }

    /// <summary>The VG a device's PV label names ("" for a bare PV), or null when it carries no PV label.</summary>
    public async Task<string?> PvVgNameAsync(string device, CancellationToken cancellationToken)
    {
        try
        {
            var output = await _lvm.RunAsync("pvs", ["--reportformat", "json", "-o", "pv_name,vg_name", device], cancellationToken).ConfigureAwait(false);
            using var json = JsonDocument.Parse(output);
            var row = json.RootElement.GetProperty("report")[0].GetProperty("pv").EnumerateArray().FirstOrDefault();
            return row.ValueKind == JsonValueKind.Undefined ? null : row.GetProperty("vg_name").GetString() ?? string.Empty;
        }
        catch (LvmException e) when (e.ExitCode == 5)
        {
            return null;
        }
    }

    private async Task<IReadOnlyList<FullReport>> FullReportsAsync(IReadOnlyList<string> vgNames, CancellationToken cancellationToken)
    {
        var output = await _lvm.RunAsync("fullreport",
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
}
