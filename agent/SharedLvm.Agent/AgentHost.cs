using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SharedLvm.Agent.Controller;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Agent.Rescan;
using SharedLvm.Agent.Security;
using SharedLvm.Agent.Telemetry;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;
using SharedLvm.Os.Processes;
using SharedLvm.Os.Systemd;
using SharedLvm.Telemetry;

namespace SharedLvm.Agent;

/// <summary>Wiring only: configuration, services, endpoints.</summary>
public static class AgentHost
{
    public const string ConfigFile = "/etc/sharedlvm/agent.json";

    public const string Usage = """
        sharedlvm-agent: SharedLvm's node agent. Sees the SAN (rescans, WWID -> multipath, health by
        layer) and activates LVs exclusively when the controller says so. Never writes LVM metadata.

        Usage: sharedlvm-agent [options]

        Options (also in /etc/sharedlvm/agent.json under "Agent", or SHAREDLVM_AGENT__<NAME>):
          --listen HOST:PORT     agent gRPC address                   [127.0.0.1:7401]
          --node NAME            this node's name                     [the hostname]
          --controller ADDRESS   controller API, host:port or URL      [127.0.0.1:7400]
          --tls-ca FILE          cluster CA certificate     [/etc/sharedlvm/pki/ca.crt]
          --tls-cert FILE        this node's certificate   [/etc/sharedlvm/pki/node.crt]
          --tls-key FILE         its key (mode 0600)       [/etc/sharedlvm/pki/node.key]
          --insecure             plaintext, no authentication: development only
          --state-dir DIR        highest controller epoch seen         [/var/lib/sharedlvm-agent]
          --advertise HOST:PORT  address the controller calls back      [the --listen address]
          --metrics-listen HOST:PORT  Prometheus /metrics; "" = off    [127.0.0.1:7411]
          --otlp-endpoint URL    export traces by OTLP/HTTP            [off]
          --sysfs-root DIR       sysfs/udev tree to read (tests)       [/]
          -h, --help             this text

        Over mutual TLS (the default) the agent obeys only the controller's certificate, registers
        only as the node its own certificate names, and audits commands to STATE_DIR/audit.log.
        Runs under systemd as Type=notify (READY/STATUS/WATCHDOG/STOPPING); logs to stderr.
        """;

    private static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--listen"] = "Agent:Listen",
        ["--node"] = "Agent:NodeName",
        ["--controller"] = "Agent:Controller",
        ["--sysfs-root"] = "Agent:SysfsRoot",
        ["--state-dir"] = "Agent:StateDirectory",
        ["--advertise"] = "Agent:AdvertiseAddress",
        ["--metrics-listen"] = "Agent:MetricsListen",
        ["--otlp-endpoint"] = "Agent:OtlpEndpoint",
        ["--insecure"] = "Agent:Insecure",
        ["--tls-ca"] = "Agent:TlsCa",
        ["--tls-cert"] = "Agent:TlsCertificate",
        ["--tls-key"] = "Agent:TlsKey",
    };

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        args = GrpcDaemon.ExpandFlags(args, "--insecure");
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonFile(ConfigFile, optional: true);
        builder.Configuration.AddEnvironmentVariables("SHAREDLVM_AGENT__");
        builder.Configuration.AddCommandLine(args, Switches);
        var options = new AgentOptions();
        builder.Configuration.GetSection("Agent").Bind(options);

        var security = TransportSecurity.Load(options.Insecure, new TlsFiles(options.TlsCa, options.TlsCertificate, options.TlsKey));
        if (security.Tls?.Identity is { } own && (own.Role != PeerRoles.Node || own.Name != options.NodeName))
        {
            throw new TlsConfigurationException(
                $"certificate {options.TlsCertificate} is {own.Name} ({own.Role}), but this agent is node {options.NodeName}: the controller would refuse every report (scripts/pki node {options.NodeName})");
        }

        // A plaintext --controller with TLS on fails here, not in the link's first connection attempt.
        security.Resolve(options.Controller);
        GrpcDaemon.Configure(builder, options.Listen, security);
        Directory.CreateDirectory(options.StateDirectory);
        GrpcDaemon.AddCallGate(builder, AgentAccess.Policy(), options.AuditLogPath);
        MetricsEndpoint.Configure(builder, options.MetricsListen, new MetricScope(new KeyValuePair<string, string>("node", options.NodeName)), AgentMetrics.MeterName);
        Tracing.Configure(builder, "sharedlvm-agent", options.OtlpEndpoint);

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<IProcessRunner, ProcessRunner>();
        builder.Services.AddSingleton(new SysfsTree(options.SysfsRoot));
        builder.Services.AddSingleton<IMultipathd>(sp => new MultipathdCli(sp.GetRequiredService<IProcessRunner>(), options.MultipathdTimeout));
        builder.Services.AddSingleton<SanDiscovery>();
        builder.Services.AddSingleton<IDmSetup>(sp => new DmSetupCli(sp.GetRequiredService<IProcessRunner>(), options.MultipathdTimeout));
        builder.Services.AddSingleton(new RescanOptions());
        builder.Services.AddSingleton<ScsiRescanner>();
        builder.Services.AddSingleton<AgentLvm>();
        builder.Services.AddSingleton<IVolumeActivator>(sp => sp.GetRequiredService<AgentLvm>());
        builder.Services.AddSingleton<SanWatcher>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SanWatcher>());
        builder.Services.AddSingleton(new EpochStore(options.StateDirectory));
        builder.Services.AddSingleton<Reconciler>();
        builder.Services.AddSingleton<ControllerLink>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ControllerLink>());
        builder.Services.AddSingleton<AgentMetrics>();
        builder.Services.AddSingleton<AgentApi>();
        builder.Services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
        builder.Services.AddHostedService(sp => new SystemdLifetimeService(
            sp.GetRequiredService<ISystemdNotifier>(),
            sp.GetRequiredService<IHostApplicationLifetime>(),
            () => sp.GetRequiredService<SanWatcher>().Current is { } now
                ? $"node {options.NodeName}: {now.View.Maps.Count} multipath maps, health {now.Overall.ToString().ToLowerInvariant()}"
                : $"node {options.NodeName}: discovering",
            SystemdNotifier.WatchdogInterval()));
        configure?.Invoke(builder);

        var app = builder.Build();
        var reconciler = app.Services.GetRequiredService<Reconciler>();
        app.Services.GetRequiredService<SanWatcher>().ReconcileFindings = () => reconciler.Findings;
        // Instruments exist from the start, not from the first command.
        app.Services.GetRequiredService<AgentMetrics>();
        MetricsEndpoint.Map(app);
        app.MapGrpcService<AgentApi>(AgentApi.Descriptor);
        GrpcDaemon.MapCommonEndpoints(app);
        GrpcDaemon.AnnounceSecurity(app, "sharedlvm-agent", options.Listen, "activate and deactivate this node's LVs");
        return app;
    }
}
