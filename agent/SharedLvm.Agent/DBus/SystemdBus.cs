using System.Globalization;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Health;
using SharedLvm.Contracts.V1;
using Tmds.DBus.Protocol;

namespace SharedLvm.Agent.DBus;

/// <summary>A systemd unit's state, as its D-Bus properties say.</summary>
public sealed record UnitState(string ActiveState, string SubState, string Result, string StatusText, uint Restarts)
{
    public bool IsRunning => ActiveState == "active" && SubState == "running";

    public MultipathdState ToContract() => new()
    {
        ActiveState = ActiveState, SubState = SubState, Result = Result, StatusText = StatusText, Restarts = Restarts,
    };
}

/// <summary>
/// The agent on the system bus. multipathd has no D-Bus interface, but systemd is the bridge from
/// udev to D-Bus: every multipath map has a device unit
/// (dev-disk-by\x2did-dm\x2duuid\x2dmpath\x2d&lt;wwid&gt;.device), and multipathd.service is a unit
/// whose state, status text and restarts systemd publishes. So the agent hears maps appear and go
/// (a hint that triggers a new view of sysfs, which stays the source of truth), reports
/// multipathd's state in the multipath layer of health, and restarts multipathd when an operator
/// asks. Where there is no system bus it says so once and works as before.
/// </summary>
public sealed class SystemdBus : BackgroundService
{
    public const string MultipathdUnit = "multipathd.service";

    /// <summary>The device unit of a multipath map, as systemd escapes "/dev/disk/by-id/dm-uuid-mpath-".</summary>
    public const string MapUnitPrefix = "dev-disk-by\\x2did-dm\\x2duuid\\x2dmpath\\x2d";

    private const string Systemd = "org.freedesktop.systemd1";
    private const string ManagerPath = "/org/freedesktop/systemd1";
    private const string ManagerInterface = "org.freedesktop.systemd1.Manager";
    private const string PropertiesInterface = "org.freedesktop.DBus.Properties";

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);
    private readonly AgentOptions _options;
    private readonly SanWatcher _watcher;
    private readonly ILogger<SystemdBus> _logger;
    private readonly TaskCompletionSource<DBusConnection?> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private UnitState? _multipathd;
    private string? _unavailable;

    public SystemdBus(AgentOptions options, SanWatcher watcher, ILogger<SystemdBus> logger)
    {
        _options = options;
        _watcher = watcher;
        _logger = logger;
    }

    /// <summary>multipathd.service as last read, or null (no bus yet, or none).</summary>
    public UnitState? Multipathd => Volatile.Read(ref _multipathd);

    /// <summary>Map device units seen appearing or disappearing: the hints the watcher was given.</summary>
    public long MapUnitEvents { get; private set; }

    /// <summary>What the multipath layer of health says about multipathd.service.</summary>
    public IReadOnlyList<Finding> Findings()
    {
        if (_unavailable is not null || Multipathd is not { } unit)
        {
            return [];
        }

        var state = $"{unit.ActiveState} ({unit.SubState})";
        var status = unit.StatusText.Length > 0 ? $": {unit.StatusText}" : string.Empty;
        if (!unit.IsRunning)
        {
            return [new Finding(Layer.Multipath, HealthState.Failed, MultipathdUnit, "multipathd_unit_down",
                $"multipathd.service is {state}{status}, result {unit.Result}, restarted {unit.Restarts} times: maps get no path checks, failover or reinstatement.",
                $"slvm node multipathd-restart {_options.NodeName}; if it fails again, read journalctl -u multipathd on the node.")];
        }

        return unit.Restarts > 0
            ? [new Finding(Layer.Multipath, HealthState.Degraded, MultipathdUnit, "multipathd_restarted",
                $"multipathd.service is {state}{status}, but systemd restarted it {unit.Restarts} times after failures.",
                "Read journalctl -u multipathd on the node for why it died.")]
            : [new Finding(Layer.Multipath, HealthState.Ok, MultipathdUnit, "multipathd_running", $"multipathd.service is {state}{status}.")];
    }

    /// <summary>Restarts multipathd.service (systemd's RestartUnit, mode "replace") and waits until it runs again.</summary>
    public async Task<UnitState> RestartMultipathdAsync(CancellationToken cancellationToken)
    {
        var connection = await ConnectionAsync(cancellationToken).ConfigureAwait(false);
        AgentLog.Restarting(_logger, _options.NodeName);
        await CallAsync(connection, Manager("RestartUnit", "ss", (ref MessageWriter w) =>
        {
            w.WriteString(MultipathdUnit);
            w.WriteString("replace");
        }), (m, _) => m.GetBodyReader().ReadObjectPathAsString(), cancellationToken).ConfigureAwait(false);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var state = await ReadMultipathdAsync(connection, cancellationToken).ConfigureAwait(false);
            if (state.IsRunning || DateTime.UtcNow > deadline)
            {
                _watcher.Poke();
                return state;
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        DBusConnection? connection = null;
        try
        {
            connection = new DBusConnection(_options.DBusAddress == "system" ? DBusAddress.System! : _options.DBusAddress);
            await connection.ConnectAsync().AsTask().WaitAsync(CallTimeout, stoppingToken).ConfigureAwait(false);
            await CallAsync(connection, Manager("Subscribe", null, null), (_, _) => true, stoppingToken).ConfigureAwait(false);
            foreach (var signal in new[] { "UnitNew", "UnitRemoved" })
            {
                var appeared = signal == "UnitNew";
                await connection.AddMatchAsync(
                    new MatchRule { Type = MessageType.Signal, Interface = ManagerInterface, Member = signal, Path = ManagerPath },
                    (m, _) => m.GetBodyReader().ReadString(),
                    (Notification<string> n) => OnUnit(n, appeared),
                    emitOnCapturedContext: false).ConfigureAwait(false);
            }

            _connected.TrySetResult(connection);
            AgentLog.SystemdBusConnected(_logger, _options.DBusAddress);
        }
        catch (Exception e) when (e is DBusExceptionBase or IOException or TimeoutException or System.Net.Sockets.SocketException or ArgumentException)
        {
            // Once, at start: a host without a system bus (a container, a minimal image) still runs.
            _unavailable = e.Message;
            AgentLog.NoBus(_logger, _options.DBusAddress, e.Message);
            connection?.Dispose();
            _connected.TrySetResult(null);
            return;
        }

        using (connection)
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    Volatile.Write(ref _multipathd, await ReadMultipathdAsync(connection, stoppingToken).ConfigureAwait(false));
                }
                catch (Exception e) when (e is DBusExceptionBase or TimeoutException)
                {
                    AgentLog.ReadFailed(_logger, MultipathdUnit, e.Message);
                }

                try
                {
                    await Task.Delay(_options.ResyncInterval, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>The WWID a map's device unit is named after, or null for any other unit.</summary>
    public static string? WwidOfMapUnit(string unit) =>
        unit.StartsWith(MapUnitPrefix, StringComparison.Ordinal) && unit.EndsWith(".device", StringComparison.Ordinal)
            ? Unescape(unit[MapUnitPrefix.Length..^".device".Length])
            : null;

    /// <summary>systemd-escape reversed: "\xNN" is the byte NN ('-' in a name stands for '/').</summary>
    private static string Unescape(string escaped)
    {
        var bytes = new List<byte>(escaped.Length);
        for (var i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] == '\\' && i + 3 < escaped.Length && escaped[i + 1] == 'x'
                && byte.TryParse(escaped.AsSpan(i + 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 3;
            }
            else
            {
                bytes.Add(escaped[i] == '-' ? (byte)'/' : (byte)escaped[i]);
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private void OnUnit(Notification<string> notification, bool appeared)
    {
        if (notification.HasValue && WwidOfMapUnit(notification.Value) is { } wwid)
        {
            MapUnitEvents++;
            AgentLog.MapUnit(_logger, wwid, appeared ? "appeared" : "went away");
            _watcher.Poke();
        }
    }

    private async Task<DBusConnection> ConnectionAsync(CancellationToken cancellationToken) =>
        await _connected.Task.WaitAsync(CallTimeout, cancellationToken).ConfigureAwait(false)
            ?? throw new AgentException(AgentErrorKind.Unavailable, $"node {_options.NodeName} has no system bus ({_unavailable}): systemd can't be asked to restart multipathd here.");

    private static async Task<UnitState> ReadMultipathdAsync(DBusConnection connection, CancellationToken cancellationToken)
    {
        var path = await CallAsync(connection, Manager("LoadUnit", "s", (ref MessageWriter w) => w.WriteString(MultipathdUnit)),
            (m, _) => m.GetBodyReader().ReadObjectPathAsString(), cancellationToken).ConfigureAwait(false);
        var unit = await GetAllAsync(connection, path, "org.freedesktop.systemd1.Unit", cancellationToken).ConfigureAwait(false);
        var service = await GetAllAsync(connection, path, "org.freedesktop.systemd1.Service", cancellationToken).ConfigureAwait(false);
        return new UnitState(
            Text(unit, "ActiveState"),
            Text(unit, "SubState"),
            Text(service, "Result"),
            Text(service, "StatusText"),
            service.TryGetValue("NRestarts", out var restarts) && restarts.Type == VariantValueType.UInt32 ? restarts.GetUInt32() : 0);
    }

    private static string Text(Dictionary<string, VariantValue> properties, string name) =>
        properties.TryGetValue(name, out var value) && value.Type == VariantValueType.String ? value.GetString() : string.Empty;

    private static Task<Dictionary<string, VariantValue>> GetAllAsync(DBusConnection connection, string path, string @interface, CancellationToken cancellationToken)
    {
        MessageBuffer Create()
        {
            using var writer = connection.GetMessageWriter();
            writer.WriteMethodCallHeader(Systemd, path, PropertiesInterface, "GetAll", "s");
            writer.WriteString(@interface);
            return writer.CreateMessage();
        }

        return CallAsync(connection, Create, (m, _) => m.GetBodyReader().ReadDictionaryOfStringToVariantValue(), cancellationToken);
    }

    /// <summary>Writes a message body. By reference: MessageWriter is a struct, and a copy's writes are lost (the bus then drops the connection for a malformed message).</summary>
    private delegate void BodyWriter(ref MessageWriter writer);

    private static Func<DBusConnection, MessageBuffer> Manager(string member, string? signature, BodyWriter? body) => connection =>
    {
        var writer = connection.GetMessageWriter();
        try
        {
            writer.WriteMethodCallHeader(Systemd, ManagerPath, ManagerInterface, member, signature);
            body?.Invoke(ref writer);
            return writer.CreateMessage();
        }
        finally
        {
            writer.Dispose();
        }
    };

    private static Task<T> CallAsync<T>(DBusConnection connection, Func<DBusConnection, MessageBuffer> message, MessageValueReader<T> reader, CancellationToken cancellationToken) =>
        CallAsync(connection, () => message(connection), reader, cancellationToken);

    /// <summary>Every D-Bus call is bounded: a wedged systemd must not wedge the agent.</summary>
    private static Task<T> CallAsync<T>(DBusConnection connection, Func<MessageBuffer> message, MessageValueReader<T> reader, CancellationToken cancellationToken) =>
        connection.CallMethodAsync(message(), reader).WaitAsync(CallTimeout, cancellationToken);
}
