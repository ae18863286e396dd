using Microsoft.Extensions.Hosting;

namespace SharedLvm.Os.Systemd;

/// <summary>
/// Tells systemd READY=1 once the host has started, pings WATCHDOG=1 at half the interval systemd
/// asked for (WatchdogSec=), and STOPPING=1 on shutdown. A hung agent stops pinging and is restarted.
/// </summary>
public sealed class SystemdLifetimeService : BackgroundService
{
    private readonly ISystemdNotifier _notifier;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly TimeSpan? _watchdog;
    private readonly Func<string> _status;

    public SystemdLifetimeService(ISystemdNotifier notifier, IHostApplicationLifetime lifetime, Func<string> status, TimeSpan? watchdog)
    {
        _notifier = notifier;
        _lifetime = lifetime;
        _status = status;
        _watchdog = watchdog;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_notifier.IsEnabled)
        {
            return;
        }

        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = _lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken).ConfigureAwait(false);
        _notifier.Notify("READY=1\nSTATUS=" + _status());
        using var stopping = _lifetime.ApplicationStopping.Register(() => _notifier.Notify("STOPPING=1"));
        var period = _watchdog is { } w ? w / 2 : TimeSpan.FromSeconds(30);
        using var timer = new PeriodicTimer(period);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            _notifier.Notify((_watchdog is null ? string.Empty : "WATCHDOG=1\n") + "STATUS=" + _status());
        }
    }
}
