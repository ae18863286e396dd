using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace SharedLvm.Hosting;

/// <summary>The one-line status a daemon shows in `systemctl status`.</summary>
public delegate string SystemdStatus();

/// <summary>
/// What Microsoft.Extensions.Hosting.Systemd does not send: WATCHDOG=1 at half the interval systemd
/// asked for (WatchdogSec=; a hung agent stops pinging and is restarted) and STATUS= lines. Only
/// when systemd started the process: the package registers its notifier only then.
/// </summary>
public sealed class SystemdWatchdog(IServiceProvider services, IHostApplicationLifetime lifetime, SystemdStatus status) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (services.GetService<ISystemdNotifier>() is not { IsEnabled: true } notifier)
        {
            return;
        }

        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken).ConfigureAwait(false);
        var watchdog = Interval();
        notifier.Notify(new ServiceState("STATUS=" + status()));
        using var timer = new PeriodicTimer(watchdog is { } w ? w / 2 : TimeSpan.FromSeconds(30));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            notifier.Notify(new ServiceState((watchdog is null ? string.Empty : "WATCHDOG=1\n") + "STATUS=" + status()));
        }
    }

    /// <summary>The interval systemd expects pings at, from $WATCHDOG_USEC, if it is meant for this process.</summary>
    internal static TimeSpan? Interval()
    {
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (pid is not null && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return null;
        }

        return long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) && usec > 0
            ? TimeSpan.FromMicroseconds(usec)
            : null;
    }
}
