using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Agent;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Agent.Uplink;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;
using SharedLvm.Tests.Support;
using static SharedLvm.Tests.Support.SysfsFixtures;

namespace SharedLvm.Tests.Agent.Uplink;

/// <summary>
/// The reconciler on a node where an LV came up through a raw path (the raw-path tree: LV dm-2 on
/// sdc, LU 2's map absent), with an activator that changes the tree as lvm would.
/// </summary>
public sealed class ReconcilerTests : IAsyncDisposable
{
    private const string Vg = "lab2";
    private const string Lv = "slvm-lvldpx2vh6egi4znq4li2psqoq";
    private const string Subject = Vg + "/" + Lv;
    private readonly SysfsFixtures _fixtures = new();
    private readonly LogSink _logs = new();
    private readonly ILoggerFactory _factory;
    private readonly string _root;
    private readonly AgentOptions _options;
    private readonly SanWatcher _watcher;
    private readonly SysfsActivator _activator;
    private readonly Reconciler _reconciler;

    public ReconcilerTests()
    {
        _root = _fixtures.Copy("raw-path");
        _options = new AgentOptions { NodeName = "node-a", SysfsRoot = _root, InspectLvm = false, ResyncInterval = TimeSpan.FromHours(1), RawPathCheckInterval = TimeSpan.FromMilliseconds(50) };
        _factory = LoggerFactory.Create(b => b.AddProvider(_logs));
        var sysfs = new SysfsTree(_root);
        _watcher = new SanWatcher(new SanDiscovery(sysfs, new FixedMultipathd(null), TimeProvider.System),
            new AgentLvm(new ProcessRunner(NullLogger<ProcessRunner>.Instance), _options), _options, _factory.CreateLogger<SanWatcher>());
        _activator = new SysfsActivator(sysfs);
        _reconciler = new Reconciler(_watcher, _activator, _options, _factory.CreateLogger<Reconciler>());
        // As AgentHost wires it: the reconciler's alarms are reported with the node's health.
        _watcher.ReconcileFindings = () => _reconciler.Findings;
    }

    public async ValueTask DisposeAsync()
    {
        await _reconciler.StopAsync(CancellationToken.None);
        _reconciler.Dispose();
        await _watcher.StopAsync(CancellationToken.None);
        _watcher.Dispose();
        _factory.Dispose();
        _fixtures.Dispose();
        _logs.VerifyNoErrors();
    }

    [Fact]
    public async Task An_lv_on_a_raw_path_is_deactivated_and_stays_a_critical_finding_until_it_is_active_through_its_map()
    {
        await _watcher.RefreshAsync(CancellationToken.None);
        Assert.Equal(1, await _reconciler.ReleaseRawPathsAsync(CancellationToken.None));
        Assert.Equal([Subject], _activator.Deactivated);
        var finding = Assert.Single(_reconciler.Findings);
        Assert.Equal((Layer.Lv, HealthState.Failed, Subject, "lv_on_raw_path"), (finding.Layer, finding.Severity, finding.Subject, finding.Code));
        foreach (var part in (string[])["node node-a", "raw path /dev/sdc", "multipath map /dev/mapper/35000c500a0000002", "The agent deactivated " + Subject])
        {
            Assert.Contains(part, finding.Message, StringComparison.Ordinal);
        }

        Assert.Contains("update-initramfs -u", finding.Remedy, StringComparison.Ordinal);
        Assert.Contains("multipath_component_detection=1", finding.Remedy, StringComparison.Ordinal);
        Assert.Single(_logs.Records, r => r.EventId.Id == 4304 && r.Level == LogLevel.Warning && r.Message.Contains("/dev/sdc", StringComparison.Ordinal));

        // The view still shows the LV a moment after: lvm is not asked again about an LV that is gone.
        Assert.Equal(0, await _reconciler.ReleaseRawPathsAsync(CancellationToken.None));
        var snapshot = await _watcher.RefreshAsync(CancellationToken.None);
        Assert.Empty(snapshot.View.ActiveLvs);
        Assert.Contains(snapshot.Findings, f => f.Code == "lv_on_raw_path");
        Assert.Equal(0, await _reconciler.ReleaseRawPathsAsync(CancellationToken.None));
        Assert.Equal(finding, Assert.Single(_reconciler.Findings));

        // Attached again: the agent's lvm activates it on LU 2's map, and the finding is over.
        RestoreFrom("lab-node-a", "sys/block/dm-1", "sys/block/dm-2");
        var healed = await _watcher.RefreshAsync(CancellationToken.None);
        Assert.Equal(["dm-1"], Assert.Single(healed.View.ActiveLvs).Devices);
        await _reconciler.ReleaseRawPathsAsync(CancellationToken.None);
        Assert.Empty(_reconciler.Findings);
        Assert.Single(_activator.Deactivated);
    }

    [Fact]
    public async Task An_open_lv_on_a_raw_path_is_left_active_and_the_finding_says_who_has_it_open()
    {
        _activator.Open.Add(Subject);
        await _watcher.RefreshAsync(CancellationToken.None);
        await _reconciler.ReleaseRawPathsAsync(CancellationToken.None);
        await _reconciler.ReleaseRawPathsAsync(CancellationToken.None);
        Assert.Empty(_activator.Deactivated);
        var finding = Assert.Single(_reconciler.Findings);
        Assert.Equal(HealthState.Failed, finding.Severity);
        Assert.Contains("is active on node node-a through raw path /dev/sdc", finding.Message, StringComparison.Ordinal);
        Assert.Contains("open (pid 4242 (qemu-system-x86)), so the agent left it active", finding.Message, StringComparison.Ordinal);
        Assert.StartsWith("Stop what uses it", finding.Remedy, StringComparison.Ordinal);
        // Critical once, not at every pass.
        Assert.Single(_logs.Records, r => r.EventId.Id == 4305 && r.Level == LogLevel.Critical);
        _logs.Expect(4305);

        // Closed: the next pass deactivates it.
        _activator.Open.Clear();
        Assert.Equal(1, await _reconciler.ReleaseRawPathsAsync(CancellationToken.None));
        Assert.Contains("The agent deactivated", Assert.Single(_reconciler.Findings).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deactivation_that_fails_is_the_finding_and_is_logged_once()
    {
        _activator.Failure = new LvmException("lvchange -an failed: Logical volume lab2/slvm-x in use.");
        await _watcher.RefreshAsync(CancellationToken.None);
        Assert.Equal(0, await _reconciler.ReleaseRawPathsAsync(CancellationToken.None));
        Assert.Equal(0, await _reconciler.ReleaseRawPathsAsync(CancellationToken.None));
        var finding = Assert.Single(_reconciler.Findings);
        Assert.Contains("Deactivating it failed", finding.Message, StringComparison.Ordinal);
        Assert.Contains("in use", finding.Message, StringComparison.Ordinal);
        Assert.Single(_logs.Records, r => r.EventId.Id == 4303);
        _logs.Expect(4303);
    }

    [Fact]
    public async Task At_registration_an_owned_lv_on_a_raw_path_is_deactivated_too_and_the_finding_says_to_attach_it_again()
    {
        var deactivated = await _reconciler.ReconcileAsync([new OwnedVolume { VolumeId = VolumeId.FromLvName(Lv), VgName = Vg, LvName = Lv }], CancellationToken.None);
        Assert.Equal(1, deactivated);
        Assert.Equal([Subject], _activator.Deactivated);
        var finding = Assert.Single(_reconciler.Findings);
        Assert.Equal("lv_on_raw_path", finding.Code);
        Assert.Contains("it is attached to this node: attach it again to activate it through the map", finding.Message, StringComparison.Ordinal);
        // Not also a stray (active_not_owned, 4301): one LV, one story.
        Assert.DoesNotContain(_logs.Records, r => r.EventId.Id == 4301);
    }

    [Fact]
    public async Task Running_it_checks_every_interval_without_a_registration()
    {
        await _watcher.RefreshAsync(CancellationToken.None);
        await _reconciler.StartAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => _activator.Deactivated.Count == 1, "the reconciler's own pass deactivated the LV");
        Assert.Equal("lv_on_raw_path", Assert.Single(_reconciler.Findings).Code);
    }

    private void RestoreFrom(string fixture, params string[] directories)
    {
        foreach (var directory in directories)
        {
            var target = Path.Combine(_root, directory);
            if (Directory.Exists(target))
            {
                Directory.Delete(target, recursive: true);
            }

            foreach (var file in Directory.EnumerateFiles(Path.Combine(FixtureRoot(fixture), directory), "*", SearchOption.AllDirectories))
            {
                var destination = Path.Combine(target, Path.GetRelativePath(Path.Combine(FixtureRoot(fixture), directory), file));
                Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
                File.Copy(file, destination);
            }
        }
    }

    /// <summary>Activation as lvm does it to sysfs: a deactivated LV's dm device goes away.</summary>
    private sealed class SysfsActivator(SysfsTree sysfs) : IVolumeActivator
    {
        private readonly DmDevices _devices = new(sysfs);

        public HashSet<string> Open { get; } = new(StringComparer.Ordinal);

        public List<string> Deactivated { get; } = [];

        public Exception? Failure { get; set; }

        public Task<ActiveDevice> ActivateAsync(string vgName, string lvName, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task RefreshAsync(string vgName, string lvName, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task DeactivateAsync(string vgName, string lvName, CancellationToken cancellationToken)
        {
            if (Failure is not null)
            {
                throw Failure;
            }

            var name = DmName.Of(vgName, lvName);
            var dm = sysfs.List("sys/block").Single(d => sysfs.Read($"sys/block/{d}/dm/name") == name);
            Directory.Delete(sysfs.PathOf("sys/block/" + dm), recursive: true);
            Deactivated.Add(vgName + "/" + lvName);
            return Task.CompletedTask;
        }

        public Task<ActiveDevice?> DeviceAsync(string vgName, string lvName, CancellationToken cancellationToken) => Task.FromResult(_devices.Find(vgName, lvName));

        public Task<IReadOnlyList<string>> OpenersAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>>(Open.Contains(vgName + "/" + lvName) ? ["pid 4242 (qemu-system-x86)"] : []);
    }
}
