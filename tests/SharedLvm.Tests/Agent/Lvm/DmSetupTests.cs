using SharedLvm.Agent.Lvm;
using SharedLvm.Os.Processes;

using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent.Lvm;

public sealed class DmSetupTests
{
    private const string LabLv = "lab2-slvm--lvldpx2vh6egi4znq4li2psqoq";

    private static string LabTable() =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "sysfs", "lab-node-a", "commands", "dmsetup-table.txt"));

    [Fact]
    public void Tables_captured_on_a_lab_node_map_each_device_to_its_targets()
    {
        var tables = DmSetupText.ParseTables(LabTable());
        Assert.Equal(3, tables.Count);
        Assert.Equal("0 32768 linear 253:1 18432", tables[LabLv]);
        Assert.StartsWith("0 4194304 multipath 1 queue_if_no_path", tables["35000c500a0000001"], StringComparison.Ordinal);
    }

    [Fact]
    public void A_multi_segment_lv_keeps_every_target_line_and_no_devices_is_empty()
    {
        // An LV extended after another LV was allocated behind it: two linear segments.
        var tables = DmSetupText.ParseTables("vg-lv: 0 8192 linear 253:0 2048\nvg-lv: 8192 8192 linear 253:0 40960\n");
        Assert.Equal("0 8192 linear 253:0 2048\n8192 8192 linear 253:0 40960", tables["vg-lv"]);
        Assert.Empty(DmSetupText.ParseTables("No devices found\n"));
    }

    [Fact]
    public async Task The_cli_joins_tables_and_open_counts_and_a_hung_dmsetup_is_just_no_answer()
    {
        var outputs = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["table"] = LabTable(),
            ["info"] = $"35000c500a0000001,1\n35000c500a0000002,1\n{LabLv},2\n",
        };
        var devices = await new DmSetupCli(new CannedRunner(outputs), TimeSpan.FromSeconds(1)).ReadAsync(CancellationToken.None);
        Assert.Equal((LabLv, 2), (devices[LabLv].Name, devices[LabLv].OpenCount));
        Assert.Equal("0 32768 linear 253:1 18432", devices[LabLv].Table);

        var hung = await new DmSetupCli(new CannedRunner(null), TimeSpan.FromSeconds(1)).ReadAsync(CancellationToken.None);
        Assert.Empty(hung);
    }
}
