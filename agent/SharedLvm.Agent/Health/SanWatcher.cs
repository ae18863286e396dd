using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Lvm;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;
using SharedLvm.Agent.Udev;

using SharedLvm.Contracts.V1;

namespace SharedLvm.Agent.Health;

/// <summary>The node's latest view of the SAN and its findings.</summary>
public sealed record SanSnapshot(NodeView View, LvmView? Lvm, IReadOnlyList<Finding> Findings)
{
    public HealthState Overall => HealthEvaluator.Overall(Findings);
}

/// <summary>
/// Keeps <see cref="Current"/> fresh: a rescan of sysfs within a debounce of any block/scsi uevent,
/// and a full resync every <see cref="AgentOptions.ResyncInterval"/> as a safety net for missed events
/// (netlink drops under storms). Without a netlink socket (not root), periodic resync alone.
/// </summary>
public sealed class SanWatcher : BackgroundService
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(300);
    private readonly SanDiscovery _discovery;
    private readonly AgentLvm _lvm;
    private readonly AgentOptions _options;
    private readonly ILogger<SanWatcher> _logger;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TaskCompletionSource _firstScan = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _lifetime = new();
    private readonly object _lvmGate = new();
    private Task<LvmInspection>? _lvmInFlight;
    private DateTimeOffset _lvmStarted;
    private LvmView? _lastLvm;
    private SanSnapshot? _current;

    public SanWatcher(SanDiscovery discovery, AgentLvm lvm, AgentOptions options, ILogger<SanWatcher> logger)
    {
        _discovery = discovery;
        _lvm = lvm;
        _options = options;
        _logger = logger;
    }

    public SanSnapshot? Current => Volatile.Read(ref _current);

    public long Resyncs { get; private set; }

    /// <summary>Scans now (the API's "live" answers) and publishes the result.</summary>
    public async Task<SanSnapshot> RefreshAsync(CancellationToken cancellationToken)
    {
        var view = await _discovery.ScanAsync(cancellationToken).ConfigureAwait(false);
        var findings = HealthEvaluator.Evaluate(view, _options.ExpectedWwids).ToList();
        var (lvm, lvmFindings) = await InspectLvmAsync(cancellationToken).ConfigureAwait(false);
        findings.AddRange(lvmFindings);
        findings.AddRange(Hygiene.Inspect(view, lvm));
        findings.AddRange(ReconcileFindings());
        var snapshot = new SanSnapshot(view, lvm, findings);
        var previous = Interlocked.Exchange(ref _current, snapshot);
        Resyncs++;
        foreach (var finding in snapshot.Findings.Where(f => previous?.Findings.Contains(f) != true))
        {
            AgentLog.Finding(_logger, finding.Layer, finding.Severity, finding.Subject, finding.Message);
        }

        _firstScan.TrySetResult();
        return snapshot;
    }

    /// <summary>
    /// The LVM view, never holding a refresh hostage. Measured in the SAN lab: with every path of an
    /// LU down and queue_if_no_path, lvm blocks reading the PV label (D state, unkillable) and a
    /// live health call timed out exactly when an operator needed it. So lvm runs in the background,
    /// one inspection at a time (a stuck one is not joined by another every resync), and a refresh
    /// waits for it at most <see cref="AgentOptions.LvmInspectWait"/>; past that it reports the last
    /// good view, and once the inspection has run for <see cref="AgentOptions.LvmUnresponsiveAfter"/>
    /// says the LVM layer is not answering.
    /// </summary>
    private async Task<(LvmView? View, IReadOnlyList<Finding> Findings)> InspectLvmAsync(CancellationToken cancellationToken)
    {
        if (!_options.InspectLvm)
        {
            return (null, []);
        }

        Task<LvmInspection> inspection;
        lock (_lvmGate)
        {
            if (_lvmInFlight is null || _lvmInFlight.IsCompleted)
            {
                _lvmStarted = DateTimeOffset.UtcNow;
                _lvmInFlight = Task.Run(() => InspectOnceAsync(_lifetime.Token), CancellationToken.None);
            }

            inspection = _lvmInFlight;
        }

        var finished = await Task.WhenAny(inspection, Task.Delay(_options.LvmInspectWait, cancellationToken)).ConfigureAwait(false);
        if (finished == inspection)
        {
            var result = await inspection.ConfigureAwait(false);
            return (result.View ?? _lastLvm, result.Findings);
        }

        cancellationToken.ThrowIfCancellationRequested();
        var waited = DateTimeOffset.UtcNow - _lvmStarted;
        if (waited < _options.LvmUnresponsiveAfter)
        {
            return (_lastLvm, []);
        }

        return (_lastLvm, [new Finding(Layer.Lvm, HealthState.Failed, "lvm", "lvm_unresponsive",
            $"lvm has not answered for {waited.TotalSeconds:0} s: I/O to a shared LU is probably blocked (all paths down with queue_if_no_path?).",
            "Look at the multipath layer first; lvm commands on this node, activations included, wait for the LU until a path returns.")]);
    }

    private async Task<LvmInspection> InspectOnceAsync(CancellationToken cancellationToken)
    {
        try
        {
            var view = await _lvm.InspectAsync(cancellationToken).ConfigureAwait(false);
            _lastLvm = view;
            return new LvmInspection(view, []);
        }
        catch (Exception e) when (e is LvmException or ProcessTimeoutException or ProcessStartException or FormatException)
        {
            return new LvmInspection(null, [new Finding(Layer.Lvm, HealthState.Failed, "lvm", "lvm_unavailable",
                $"lvm could not report the shared VGs: {e.Message}", "Check that lvm2 is installed and that no lvm command hangs on a dead path.")]);
        }
        catch (OperationCanceledException)
        {
            return new LvmInspection(null, []);
        }
    }

    private sealed record LvmInspection(LvmView? View, IReadOnlyList<Finding> Findings);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _lifetime.CancelAsync().ConfigureAwait(false);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        _lifetime.Dispose();
        base.Dispose();
    }

    /// <summary>Set by the host: findings other parts of the agent own (the reconciler's alarms, multipathd's unit), reported with the node's health.</summary>
    public Func<IReadOnlyList<Finding>> ReconcileFindings { get; set; } = () => [];

    /// <summary>
    /// Something saw the SAN change (a device unit came or went on D-Bus): take a new view soon.
    /// A hint only: the sysfs/netlink inventory stays the source of truth.
    /// </summary>
    public void Poke() => _wake.Writer.TryWrite(true);

    public Task WaitForFirstScanAsync(CancellationToken cancellationToken) => _firstScan.Task.WaitAsync(cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var events = Task.Run(() => ListenAsync(stoppingToken), stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                AgentLog.ScanFailed(_logger, e);
            }

            using var resync = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            resync.CancelAfter(_options.ResyncInterval);
            try
            {
                await _wake.Reader.ReadAsync(resync.Token).ConfigureAwait(false);
                await Task.Delay(Debounce, stoppingToken).ConfigureAwait(false);
                _wake.Reader.TryRead(out _);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                // Periodic resync.
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        await events.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        UeventMonitor monitor;
        try
        {
            monitor = new UeventMonitor();
        }
        catch (IOException e)
        {
            AgentLog.NoUevents(_logger, e.Message, _options.ResyncInterval.TotalSeconds);
            return;
        }

        using (monitor)
        {
            await foreach (var uevent in monitor.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                if (uevent.Subsystem is "block" or "scsi" or "scsi_host" or "fc_host" or "fc_remote_ports" or "iscsi_session")
                {
                    _wake.Writer.TryWrite(true);
                }
            }
        }
    }
}
