using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Lvm;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;
using SharedLvm.Agent.Udev;

namespace SharedLvm.Agent.Health;

/// <summary>The node's latest view of the SAN and its findings.</summary>
public sealed record SanSnapshot(NodeView View, LvmView? Lvm, IReadOnlyList<Finding> Findings)
{
    public Severity Overall => HealthEvaluator.Overall(Findings);
}

/// <summary>
/// Keeps <see cref="Current"/> fresh: a rescan of sysfs within a debounce of any block/scsi uevent,
/// and a full resync every <see cref="AgentOptions.ResyncInterval"/> as a safety net for missed events
/// (netlink drops under storms). Without a netlink socket (not root), periodic resync alone.
/// </summary>
public sealed partial class SanWatcher : BackgroundService
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(300);
    private readonly SanDiscovery _discovery;
    private readonly AgentLvm _lvm;
    private readonly AgentOptions _options;
    private readonly ILogger<SanWatcher> _logger;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TaskCompletionSource _firstScan = new(TaskCreationOptions.RunContinuationsAsynchronously);
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
        LvmView? lvm = null;
        if (_options.InspectLvm)
        {
            try
            {
                lvm = await _lvm.InspectAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is LvmException or ProcessTimeoutException or ProcessStartException or FormatException)
            {
                findings.Add(new Finding(IoLayer.Lvm, Severity.Failed, "lvm", "lvm_unavailable",
                    $"lvm could not report the shared VGs: {e.Message}", "Check that lvm2 is installed and that no lvm command hangs on a dead path."));
            }
        }

        findings.AddRange(Hygiene.Inspect(view, lvm));
        findings.AddRange(ReconcileFindings());
        var snapshot = new SanSnapshot(view, lvm, findings);
        var previous = Interlocked.Exchange(ref _current, snapshot);
        Resyncs++;
        foreach (var finding in snapshot.Findings.Where(f => previous?.Findings.Contains(f) != true))
        {
            LogFinding(_logger, finding.Layer, finding.Severity, finding.Subject, finding.Message);
        }

        _firstScan.TrySetResult();
        return snapshot;
    }

    /// <summary>Set by the host: the reconciler's alarms, reported with the node's health.</summary>
    public Func<IReadOnlyList<Finding>> ReconcileFindings { get; set; } = () => [];

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
                LogScanFailed(_logger, e);
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
            LogNoUevents(_logger, e.Message, _options.ResyncInterval.TotalSeconds);
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

    [LoggerMessage(4001, LogLevel.Warning, "{Layer} {Severity}: {Subject}: {Message}")]
    private static partial void LogFinding(ILogger logger, IoLayer layer, Severity severity, string subject, string message);

    [LoggerMessage(4002, LogLevel.Error, "SAN discovery failed; keeping the previous view")]
    private static partial void LogScanFailed(ILogger logger, Exception exception);

    [LoggerMessage(4003, LogLevel.Warning, "No uevent socket ({Reason}); relying on a resync every {Seconds} s")]
    private static partial void LogNoUevents(ILogger logger, string reason, double seconds);
}
