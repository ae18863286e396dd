using System.Net.Sockets;
using System.Text;

namespace SharedLvm.Os.Systemd;

/// <summary>sd_notify(3): READY=1, STATUS=..., WATCHDOG=1, STOPPING=1 to the service manager.</summary>
public interface ISystemdNotifier
{
    /// <summary>False when not started by systemd with Type=notify (no $NOTIFY_SOCKET).</summary>
    bool IsEnabled { get; }

    void Notify(string state);
}

/// <summary>
/// Microsoft.Extensions.Hosting.Systemd is not obtainable here; this is its SystemdNotifier: one
/// datagram per state to the unix socket named by $NOTIFY_SOCKET ('@' = abstract namespace).
/// </summary>
public sealed class SystemdNotifier : ISystemdNotifier
{
    private readonly string? _socketPath;

    public SystemdNotifier()
        : this(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"))
    {
    }

    /// <summary>For tests: an explicit socket path.</summary>
    public SystemdNotifier(string? socketPath)
    {
        _socketPath = string.IsNullOrEmpty(socketPath) ? null : socketPath;
    }

    public bool IsEnabled => _socketPath is not null;

    public void Notify(string state)
    {
        if (_socketPath is null)
        {
            return;
        }

        // A leading '@' names the abstract namespace, written as a leading NUL byte.
        var path = _socketPath[0] == '@' ? "\0" + _socketPath[1..] : _socketPath;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        socket.Send(Encoding.UTF8.GetBytes(state));
    }

    /// <summary>The watchdog interval systemd expects pings at, from $WATCHDOG_USEC, if any.</summary>
    public static TimeSpan? WatchdogInterval()
    {
        var usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (pid is not null && pid != Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            return null;
        }

        return long.TryParse(usec, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) && value > 0
            ? TimeSpan.FromMicroseconds(value)
            : null;
    }
}
