using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Agent;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent.Lvm;

/// <summary>The agent's lvm on a real VG (loop device), and the hygiene checks.</summary>
public sealed class AgentLvmTests
{
    [Fact]
    public async Task The_agent_sees_shared_vgs_through_multipath_only_and_cannot_reach_a_write()
    {
        using var lu = LoopDevice.Create(256L * 1024 * 1024);
        LoopDevice.Present(lu);

        var vg = "agentvg" + Guid.NewGuid().ToString("N")[..6];
        Assert.Equal(0, lu.Lvm("pvcreate", lu.Device).Code);
        Assert.Equal(0, lu.Lvm("vgcreate", vg, lu.Device).Code);
        Assert.Equal(0, lu.Lvm("lvcreate", "-an", "-Zn", "-L", "8m", "-n", "lv1", vg).Code);
        try
        {
            var options = new AgentOptions { NodeName = "node-a", ExtraLvmDevicePatterns = ["^" + Regex.Escape(lu.Device) + "$"] };
            var inspector = new AgentLvm(new ProcessRunner(NullLogger<ProcessRunner>.Instance), options);
            var view = await inspector.InspectAsync(CancellationToken.None);
            var report = Assert.Single(view.VolumeGroups, r => r.VolumeGroup.Name == vg);
            Assert.Equal(lu.Device, Assert.Single(report.PhysicalVolumes).Name);
            Assert.Equal("lv1", Assert.Single(report.LogicalVolumes).Name);
            Assert.Matches(@"^\d+\.\d+\.\d+", view.Version);

            // Invariant 1: the agent can't reach a type that writes metadata: its assembly does not
            // even reference the one that holds the writing verbs. (metadata_read_only=1 is in its
            // config too, but lvm 2.03.16 does not enforce it; see AgentLvm.)
            Assert.Contains("metadata_read_only=1", inspector.Config.Render(), StringComparison.Ordinal);
            Assert.DoesNotContain(typeof(AgentLvm).Assembly.GetReferencedAssemblies(), a => a.Name == typeof(LvmMetadataWriter).Assembly.GetName().Name);

            // Without the test pattern it scans multipath maps only: the loop device's VG is invisible.
            var production = new AgentLvm(new ProcessRunner(NullLogger<ProcessRunner>.Instance), new AgentOptions { NodeName = "node-a" });
            Assert.DoesNotContain((await production.InspectAsync(CancellationToken.None)).VolumeGroups, r => r.VolumeGroup.Name == vg);
        }
        finally
        {
            lu.Lvm("vgremove", "-f", vg);
        }
    }

    [Fact]
    public async Task An_lv_on_a_raw_path_is_deactivated_by_lvm_scanning_exactly_that_path_and_one_on_its_map_with_the_agents_config()
    {
        // LU 2's map is gone in the raw-path tree, so the agent's config (maps only) would find no VG.
        var runner = new ScriptedRunner();
        var raw = new AgentLvm(runner, new AgentOptions { NodeName = "node-a", SysfsRoot = SysfsFixtures.FixtureRoot("raw-path") });
        await raw.DeactivateAsync("lab2", "slvm-lvldpx2vh6egi4znq4li2psqoq", CancellationToken.None);
        var config = Assert.Single(runner.Calls).Arguments.SkipWhile(a => a != "--config").Skip(1).First();
        Assert.Contains("multipath_component_detection=0 global_filter=[\"a|^/dev/sdc$|\",\"r|.*|\"]", config, StringComparison.Ordinal);
        Assert.Contains(runner.Calls[0].Arguments, a => a == "-an");

        var onMap = new ScriptedRunner();
        await new AgentLvm(onMap, new AgentOptions { NodeName = "node-a", SysfsRoot = SysfsFixtures.FixtureRoot("lab-node-a") })
            .DeactivateAsync("lab2", "slvm-lvldpx2vh6egi4znq4li2psqoq", CancellationToken.None);
        var agentConfig = Assert.Single(onMap.Calls).Arguments.SkipWhile(a => a != "--config").Skip(1).First();
        Assert.Contains("global_filter=[\"a|" + AgentLvm.MultipathDevicePattern + "|\",\"r|.*|\"]", agentConfig, StringComparison.Ordinal);
        Assert.DoesNotContain("multipath_component_detection", agentConfig, StringComparison.Ordinal);
    }

    [Fact]
    public void Hygiene_reports_old_lvm_friendly_names_autoactivation_and_stale_tables()
    {
        var lv = new SharedLvm.Agent.Discovery.ActiveLv("pool1-slvm--aaaa", "dm-1", 254, 1, 4 * 1024 * 1024, Suspended: false);
        var map = new MultipathMapInfo("35000c500a0000001", "mpatha", "dm-0", 1 << 30,
            [new MultipathPathInfo("sdc", "0:0:0:0", PathStatus.Active, "active", "ready"), new MultipathPathInfo("sdd", "1:0:0:0", PathStatus.Active, "active", "ready")], Queueing: true, Suspended: false, DeviceNodePresent: true);
        var view = new NodeView([], [], [], [map], [lv], MultipathdAnswered: true, DateTimeOffset.UtcNow);
        var vg = new VolumeGroup("pool1", "u", 1 << 30, 0, 4 << 20, 0, 3, 1, 1 << 20, 1 << 19, [], AutoActivation: true);
        var metadataLv = new LogicalVolume("pool1", "slvm-aaaa", "u", 8 * 1024 * 1024, ["sharedlvm"], "-wi-a-----", string.Empty, null, 254, 1, AutoActivation: true);
        var lvm = new LvmView("2.03.11(2) (2021-01-08)", [new FullReport(vg, [], [metadataLv])], new Dictionary<string, string>
        {
            ["devices/multipath_component_detection"] = "0", ["devices/use_devicesfile"] = "0",
            ["devices/global_filter"] = "[\"a|.*|\"]", ["devices/filter"] = "[\"a|.*|\"]",
        });

        var codes = Hygiene.Inspect(view, lvm).Select(f => f.Code).ToArray();
        Assert.Equal(["user_friendly_names", "lvm_too_old", "lvm_scans_raw_paths", "shared_autoactivation", "table_stale"], codes);
        Assert.Empty(Hygiene.Inspect(view with { Maps = [map with { Name = map.Wwid }], ActiveLvs = [] },
            lvm with { Version = "2.03.16(2)", HostConfig = new Dictionary<string, string> { ["devices/multipath_component_detection"] = "1" }, VolumeGroups = [] }));
    }

    [Theory]
    [InlineData("2.03.16(2) (2022-05-18)", false)]
    [InlineData("2.03.11(2) (2021-01-08)", true)]
    [InlineData("2.02.187(2)", true)]
    [InlineData("garbage", false)]
    public void Lvm_versions_compare_numerically(string version, bool tooOld) =>
        Assert.Equal(tooOld, Hygiene.VersionBelow(version, 2, 3, 12));
}
