using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Agent.Activation;
using SharedLvm.Agent.Api;
using SharedLvm.Agent.DBus;
using SharedLvm.Agent.Data;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Agent.Rescan;
using SharedLvm.Agent.Reservations;
using SharedLvm.Agent.Telemetry;
using SharedLvm.Agent.Uplink;
using SharedLvm.Grpc.Security;
using SharedLvm.Hosting;
using SharedLvm.Os.Processes;
using SharedLvm.Os.Reservations;
using SharedLvm.Telemetry;

namespace SharedLvm.Agent;

/// <summary>Wiring only: configuration, services, endpoints.</summary>
public static class AgentHost
{
    public const string Usage = """
        sharedlvm-agent: SharedLvm's node agent. Sees the SAN (rescans, WWID -> multipath, health by
        layer) and activates LVs exclusively when the controller says so. Never writes LVM metadata.

        Usage: sharedlvm-agent [options]

        Options (also in /etc/sharedlvm/agent.json under "Agent", or SHAREDLVM_AGENT__<NAME>):
          --listen HOST:PORT     agent gRPC address                   [127.0.0.1:7401]
          --node NAME            this node's name                     [the hostname]
          --controller ADDRESS   controller API, host:port or URL; several, comma-separated,
                                 with standbys: the agent follows the active one
                                                                [127.0.0.1:7400]
          --tls-ca FILE          cluster CA certificate     [/etc/sharedlvm/pki/ca.crt]
          --tls-cert FILE        this node's certificate   [/etc/sharedlvm/pki/node.crt]
          --tls-key FILE         its key (mode 0600)       [/etc/sharedlvm/pki/node.key]
          --insecure             plaintext, no authentication: development only
          --state-dir DIR        highest controller epoch seen         [/var/lib/sharedlvm-agent]
          --advertise HOST:PORT  address the controller calls back      [the --listen address]
          --metrics-listen HOST:PORT  Prometheus /metrics; "" = off    [127.0.0.1:7411]
          --otlp-endpoint URL    export traces by OTLP/HTTP            [off]
          --sysfs-root DIR       sysfs/udev tree to read (tests)       [/]
          --dbus ADDRESS         D-Bus of systemd (device units, multipathd) [system]
          --config FILE          another JSON settings file
          -h, --help             this text

        Over mutual TLS (the default) the agent obeys only the controller's certificate, registers
        only as the node its own certificate names, and audits commands to STATE_DIR/audit.log.
        Runs under systemd as Type=notify (READY/STATUS/WATCHDOG/STOPPING); logs to stderr
        (journald format under systemd). Exit codes: 64 bad usage, 78 bad configuration.

        """;

    public static readonly DaemonSpec Spec = new(
        "sharedlvm-agent",
        Usage,
        "Agent",
        "/etc/sharedlvm/agent.json",
        new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["--listen"] = "Agent:Listen",
            ["--node"] = "Agent:NodeName",
            ["--controller"] = "Agent:Controller",
            ["--sysfs-root"] = "Agent:SysfsRoot",
            ["--dbus"] = "Agent:DBusAddress",
            ["--state-dir"] = "Agent:StateDirectory",
            ["--advertise"] = "Agent:AdvertiseAddress",
            ["--metrics-listen"] = "Agent:MetricsListen",
            ["--otlp-endpoint"] = "Agent:OtlpEndpoint",
            ["--insecure"] = "Agent:Insecure",
            ["--tls-ca"] = "Agent:TlsCa",
            ["--tls-cert"] = "Agent:TlsCertificate",
            ["--tls-key"] = "Agent:TlsKey",
        },
        ["--insecure"]);

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = Daemon.CreateBuilder(Spec, args);
        var options = Daemon.Bind<AgentOptions>(builder, Spec);
        var security = TransportSecurity.Load(options.Insecure, new TlsFiles(options.TlsCa, options.TlsCertificate, options.TlsKey));
        if (security.Tls?.Identity is { } own && (own.Role != PeerRoles.Node || own.Name != options.NodeName))
        {
            throw new TlsConfigurationException(
                $"certificate {options.TlsCertificate} is {own.Name} ({own.Role}), but this agent is node {options.NodeName}: the controller would refuse every report (scripts/pki node {options.NodeName})");
        }

        // A plaintext --controller with TLS on fails here, not in the link's first connection attempt;
        // so does a list of addresses with a bad one in it.
        if (options.ControllerAddresses.Length == 0)
        {
            throw new ArgumentException("--controller names no address.");
        }

        foreach (var address in options.ControllerAddresses)
        {
            security.Resolve(address);
        }
        Directory.CreateDirectory(options.StateDirectory);
        GrpcServer.Configure<AgentStatusMapper>(builder, new GrpcServerSettings(options.Listen, security, AgentAccess.Policy(), options.AuditLogPath));
        MetricsEndpoint.Configure(builder, options.MetricsListen, new MetricScope(new KeyValuePair<string, string>("node", options.NodeName)), AgentMetrics.MeterName);
        Tracing.Configure(builder, Spec.Name, options.OtlpEndpoint);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IProcessRunner, ProcessRunner>();
        services.AddSingleton(new SysfsTree(options.SysfsRoot));
        services.AddSingleton<IMultipathd>(sp => new MultipathdCli(sp.GetRequiredService<IProcessRunner>(), options.MultipathdTimeout));
        services.AddSingleton<SanDiscovery>();
        services.AddSingleton<IDmSetup>(sp => new DmSetupCli(sp.GetRequiredService<IProcessRunner>(), options.DmSetupTimeout));
        services.AddSingleton(new RescanOptions());
        services.AddSingleton<ScsiRescanner>();
        services.AddSingleton<AgentLvm>();
        services.AddSingleton<IVolumeActivator>(sp => sp.GetRequiredService<AgentLvm>());
        services.AddSingleton<SanWatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<SanWatcher>());
        services.AddSingleton<SystemdBus>();
        services.AddHostedService(sp => sp.GetRequiredService<SystemdBus>());
        services.AddSingleton(new EpochStore(options.StateDirectory));
        services.AddSingleton<CommandGuard>();
        services.AddSingleton<ActivationWorkflow>();
        services.AddSingleton<DataMover>();
        services.AddSingleton<DataWorkflow>();
        services.AddSingleton<Reconciler>();
        services.AddHostedService(sp => sp.GetRequiredService<Reconciler>());
        services.AddSingleton<IPersistentReservations>(sp => new PersistentReservations(sp.GetRequiredService<IProcessRunner>(), options.ReservationCommandTimeout));
        services.AddSingleton<ReservationKeeper>();
        services.AddHostedService(sp => sp.GetRequiredService<ReservationKeeper>());
        services.AddSingleton<ControllerLink>();
        services.AddHostedService(sp => sp.GetRequiredService<ControllerLink>());
        services.AddSingleton<AgentMetrics>();
        services.AddSingleton<AgentService>();
        services.AddSingleton<SystemdStatus>(sp => () => sp.GetRequiredService<SanWatcher>().Current is { } now
            ? $"node {options.NodeName}: {now.View.Maps.Count} multipath maps, health {now.Overall.ToString().ToLowerInvariant()}"
            : $"node {options.NodeName}: discovering");
        services.AddHostedService<SystemdWatchdog>();
        configure?.Invoke(builder);

        var app = builder.Build();
        var reconciler = app.Services.GetRequiredService<Reconciler>();
        var systemd = app.Services.GetRequiredService<SystemdBus>();
        var reservations = app.Services.GetRequiredService<ReservationKeeper>();
        app.Services.GetRequiredService<SanWatcher>().ReconcileFindings = () => [.. reconciler.Findings, .. systemd.Findings(), .. reservations.Findings];
        // Instruments exist from the start, not from the first command.
        app.Services.GetRequiredService<AgentMetrics>();
        GrpcServer.UseTimeoutClamp(app);
        MetricsEndpoint.Map(app);
        app.MapGrpcService<AgentService>();
        GrpcServer.MapCommon(app);
        GrpcServer.AnnounceSecurity(app, Spec.Name, options.Listen, "activate and deactivate this node's LVs");
        return app;
    }
}
