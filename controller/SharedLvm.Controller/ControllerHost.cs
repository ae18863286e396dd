using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Api;
using SharedLvm.Controller.Attachments;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Telemetry;
using SharedLvm.Controller.Volumes;
using SharedLvm.Controller.Security;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;
using SharedLvm.Os.Processes;
using SharedLvm.Telemetry;

namespace SharedLvm.Controller;

/// <summary>Wiring only: configuration, services, endpoints.</summary>
public static class ControllerHost
{
    public const string ConfigFile = "/etc/sharedlvm/controller.json";

    public const string Usage = """
        sharedlvm-controller: the single writer of SharedLvm's shared VGs and the home of its gRPC API.

        Usage: sharedlvm-controller [options]

        Options (also settable in /etc/sharedlvm/controller.json under "Controller", or as
        SHAREDLVM_CONTROLLER__<NAME> environment variables):
          --listen HOST:PORT        gRPC (HTTP/2 over mutual TLS) address    [127.0.0.1:7400]
          --tls-ca FILE             cluster CA certificate        [/etc/sharedlvm/pki/ca.crt]
          --tls-cert FILE           controller certificate [/etc/sharedlvm/pki/controller.crt]
          --tls-key FILE            its key (mode 0600)    [/etc/sharedlvm/pki/controller.key]
          --tokens FILE             API bearer tokens, reread on change [/etc/sharedlvm/pki/tokens]
          --insecure                plaintext, no authentication: development only
          --state-dir DIR           journal, epoch, lvm backups               [/var/lib/sharedlvm]
          --lvm PATH                lvm binary                                [lvm]
          --lvm-timeout SECONDS     kill any lvm command after this           [120]
          --write-queue N           queued writes per pool before refusing    [256]
          --metrics-listen HOST:PORT  Prometheus /metrics (HTTP/1.1); "" = off [127.0.0.1:7410]
          --otlp-endpoint URL       export traces by OTLP/HTTP to this URL     [off]
          --config FILE             another JSON settings file
          -h, --help                this text

        scripts/pki makes the CA and certificates: API clients carry a role in their certificate
        (reader, operator, admin) or use a bearer token; agents present their node's certificate.
        Mutating and refused calls are audited to STATE_DIR/audit.log.
        Logs go to stderr in systemd/journald format. The API serves grpc.health.v1.Health.
        Without fencing, never move a volume off an unreachable node: see ARCHITECTURE.md.
        """;

    private static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--listen"] = "Controller:Listen",
        ["--state-dir"] = "Controller:StateDirectory",
        ["--lvm"] = "Controller:LvmBinary",
        ["--lvm-timeout"] = "Controller:LvmTimeoutSeconds",
        ["--write-queue"] = "Controller:WriteQueueCapacity",
        ["--metrics-listen"] = "Controller:MetricsListen",
        ["--otlp-endpoint"] = "Controller:OtlpEndpoint",
        ["--config"] = "ConfigFile",
        ["--insecure"] = "Controller:Insecure",
        ["--tls-ca"] = "Controller:TlsCa",
        ["--tls-cert"] = "Controller:TlsCertificate",
        ["--tls-key"] = "Controller:TlsKey",
        ["--tokens"] = "Controller:TokensFile",
    };

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        args = GrpcDaemon.ExpandFlags(args, "--insecure");
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonFile(ConfigFile, optional: true);
        var commandLine = new ConfigurationBuilder().AddCommandLine(args, Switches).Build();
        if (commandLine["ConfigFile"] is { } extra)
        {
            builder.Configuration.AddJsonFile(Path.GetFullPath(extra), optional: false);
        }

        builder.Configuration.AddEnvironmentVariables("SHAREDLVM_CONTROLLER__");
        builder.Configuration.AddCommandLine(args, Switches);

        var options = new ControllerOptions();
        builder.Configuration.GetSection("Controller").Bind(options);
        if (builder.Configuration.GetValue<double?>("Controller:LvmTimeoutSeconds") is { } seconds)
        {
            options.LvmTimeout = TimeSpan.FromSeconds(seconds);
        }

        var security = TransportSecurity.Load(options.Insecure, new TlsFiles(options.TlsCa, options.TlsCertificate, options.TlsKey));
        GrpcDaemon.Configure(builder, options.Listen, security, options.MaxConcurrentStreams);
        Directory.CreateDirectory(options.StateDirectory);
        GrpcDaemon.AddCallGate(builder, ApiAccess.Policy(), options.AuditLogPath, options.TokensFile, options.Mutations);
        MetricsEndpoint.Configure(builder, options.MetricsListen, new MetricScope(), ControllerMetrics.MeterName);
        Tracing.Configure(builder, "sharedlvm-controller", options.OtlpEndpoint);

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<IProcessRunner, ProcessRunner>();
        builder.Services.AddSingleton(_ => new ControllerStore(options.DatabasePath));
        builder.Services.AddSingleton(FaultInjector.FromEnvironment());
        builder.Services.AddSingleton<EventBus>();
        builder.Services.AddSingleton<PoolRegistry>();
        builder.Services.AddSingleton<VolumeService>();
        builder.Services.AddSingleton<NodeDirectory>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<NodeDirectory>());
        builder.Services.AddSingleton<AgentClients>();
        builder.Services.AddSingleton(sp => new AttachmentService(
            sp.GetRequiredService<PoolRegistry>(), sp.GetRequiredService<VolumeService>(), sp.GetRequiredService<NodeDirectory>(),
            sp.GetRequiredService<ControllerStore>(), sp.GetRequiredService<EventBus>(), sp.GetRequiredService<AgentClients>(),
            sp.GetRequiredService<ControllerStartup>(), options, sp.GetRequiredService<ILogger<AttachmentService>>()));
        builder.Services.AddSingleton(sp => new ControllerMetrics(
            sp.GetRequiredService<MetricScope>(), sp.GetRequiredService<PoolRegistry>(), sp.GetRequiredService<VolumeService>(),
            sp.GetRequiredService<NodeDirectory>(), sp.GetRequiredService<ControllerStartup>(), TimeProvider.System));
        builder.Services.AddSingleton(sp => new ControllerApi(
            sp.GetRequiredService<PoolRegistry>(), sp.GetRequiredService<VolumeService>(), sp.GetRequiredService<EventBus>(),
            sp.GetRequiredService<ControllerOptions>(), sp.GetRequiredService<NodeDirectory>(), sp.GetRequiredService<AttachmentService>(),
            sp.GetRequiredService<ControllerMetrics>(), sp.GetRequiredService<AgentClients>()));
        builder.Services.AddSingleton(sp => new NodeRegistryApi(sp.GetRequiredService<NodeDirectory>(), sp.GetRequiredService<PoolRegistry>(), sp.GetRequiredService<ControllerStartup>()));
        builder.Services.AddSingleton<ControllerStartup>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ControllerStartup>());
        configure?.Invoke(builder);

        var app = builder.Build();
        // Instruments exist from the start, not from the first API call.
        app.Services.GetRequiredService<ControllerMetrics>();
        MetricsEndpoint.Map(app);
        app.MapGrpcService<ControllerApi>(ControllerApi.Descriptor);
        app.MapGrpcService<NodeRegistryApi>(NodeRegistryApi.Descriptor);
        GrpcDaemon.MapCommonEndpoints(app);
        GrpcDaemon.AnnounceSecurity(app, "sharedlvm-controller", options.Listen, "create, delete and move every volume");
        return app;
    }
}
