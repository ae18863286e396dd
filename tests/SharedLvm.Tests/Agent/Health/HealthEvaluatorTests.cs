using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Agent;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Rescan;
using SharedLvm.Contracts.V1;
using SharedLvm.Tests.Support;
using static SharedLvm.Tests.Support.SysfsFixtures;

namespace SharedLvm.Tests.Agent.Health;

/// <summary>Findings that name the failing layer, from views of captured trees.</summary>
public sealed class HealthEvaluatorTests : IDisposable
{
    private const string Lu = "35000c500a0000001";
    private readonly SysfsFixtures _fixtures = new();

    public void Dispose() => _fixtures.Dispose();

    [Fact]
    public async Task An_offline_path_is_seen_at_the_scsi_and_multipath_layers()
    {
        var view = await DiscoveryOf("failed-path").ScanAsync(CancellationToken.None);
        var findings = HealthEvaluator.Evaluate(view, [Lu]);
        Assert.Contains(findings, f => f is { Layer: Layer.Scsi, Code: "scsi_device_not_running", Severity: HealthState.Failed });
        var path = Assert.Single(findings, f => f.Layer == Layer.Multipath);
        Assert.Equal(("path_failed", HealthState.Degraded, Lu), (path.Code, path.Severity, path.Subject));
        Assert.Contains("1 of 2 paths failed (sdd 1:0:0:0)", path.Message, StringComparison.Ordinal);
        Assert.Equal(HealthState.Degraded, HealthEvaluator.Overall(findings.Where(f => f.Layer == Layer.Multipath)));
    }

    [Fact]
    public async Task Paths_without_a_map_and_lus_not_visible_are_named()
    {
        var view = await DiscoveryOf("missing-map").ScanAsync(CancellationToken.None);
        var findings = HealthEvaluator.Evaluate(view, [Lu, "36000000000000000000000000000dead"]);
        Assert.Contains(findings, f => f is { Code: "no_multipath_map", Subject: Lu } && f.Message.Contains("sdc, sdd", StringComparison.Ordinal));
        Assert.Contains(findings, f => f is { Code: "lu_not_visible", Severity: HealthState.Failed });
    }

    [Fact]
    public async Task All_paths_down_says_whether_io_blocks_or_fails()
    {
        var parsed = MultipathdJson.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "multipathd", "show-maps-json-two-paths-one-failed.json"))
            .Replace("\"chk_st\" : \"ready\"", "\"chk_st\" : \"faulty\"", StringComparison.Ordinal));
        var view = await new SanDiscovery(new SysfsTree(FixtureRoot("two-paths")), new FixedMultipathd(parsed), TimeProvider.System).ScanAsync(CancellationToken.None);
        var finding = Assert.Single(HealthEvaluator.Evaluate(view, [Lu]));
        Assert.Equal(("all_paths_down", HealthState.Failed), (finding.Code, finding.Severity));
        Assert.Contains("is queued", finding.Message, StringComparison.Ordinal);
    }
}
