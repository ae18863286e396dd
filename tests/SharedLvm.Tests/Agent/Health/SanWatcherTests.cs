using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Agent;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Contracts.V1;
using SharedLvm.Os.Processes;
using SharedLvm.Tests.Support;
using static SharedLvm.Tests.Support.SysfsFixtures;

namespace SharedLvm.Tests.Agent.Health;

/// <summary>The node's latest view and its findings: fresh on demand, after a hint, and logged once.</summary>
public sealed class SanWatcherTests : IAsyncDisposable
{
    private readonly LogSink _logs = new();
    private readonly SanWatcher _watcher;

    public SanWatcherTests()
    {
        var options = new AgentOptions
        {
            NodeName = "node-a", SysfsRoot = FixtureRoot("failed-path"), InspectLvm = false,
            ExpectedWwids = ["35000c500a0000001"], ResyncInterval = TimeSpan.FromHours(1),
        };
        using var factory = LoggerFactory.Create(b => b.AddProvider(_logs));
        _watcher = new SanWatcher(DiscoveryOf("failed-path"), new AgentLvm(new ProcessRunner(NullLogger<ProcessRunner>.Instance), options), options, factory.CreateLogger<SanWatcher>());
    }

    public async ValueTask DisposeAsync()
    {
        await _watcher.StopAsync(CancellationToken.None);
        _watcher.Dispose();
    }

    [Fact]
    public async Task A_refresh_publishes_the_view_its_findings_and_those_other_parts_own()
    {
        var alarm = new Finding(Layer.Lv, HealthState.Failed, "pool/slvm-x", "active_not_owned", "open here, owned by nobody");
        _watcher.ReconcileFindings = () => [alarm];
        var snapshot = await _watcher.RefreshAsync(CancellationToken.None);
        Assert.Same(snapshot, _watcher.Current);
        Assert.Contains(snapshot.Findings, f => f is { Code: "path_failed", Layer: Layer.Multipath });
        Assert.Contains(alarm, snapshot.Findings);
        Assert.Equal(HealthState.Failed, snapshot.Overall);
    }

    [Fact]
    public async Task A_finding_is_logged_when_it_appears_not_at_every_refresh()
    {
        await _watcher.RefreshAsync(CancellationToken.None);
        await _watcher.RefreshAsync(CancellationToken.None);
        Assert.Single(_logs.Records, r => r.EventId.Id == 4001 && r.Message.Contains("path", StringComparison.OrdinalIgnoreCase) && r.Message.Contains("1 of 2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_hint_makes_it_look_again_long_before_the_periodic_resync()
    {
        await _watcher.StartAsync(CancellationToken.None);
        await _watcher.WaitForFirstScanAsync(CancellationToken.None);
        var before = _watcher.Resyncs;
        _watcher.Poke();
        await Eventually.TrueAsync(() => _watcher.Resyncs > before, "a new view after the hint");
    }
}
