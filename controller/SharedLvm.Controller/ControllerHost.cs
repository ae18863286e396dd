using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Controller.Agents;
using SharedLvm.Controller.Api;
using SharedLvm.Controller.Attachments;
using SharedLvm.Controller.Data;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.Fencing;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Telemetry;
using SharedLvm.Controller.Volumes;
using SharedLvm.Grpc.Security;
using SharedLvm.Hosting;
using SharedLvm.Os.Processes;
using SharedLvm.Os.Sanlock;
using SharedLvm.Telemetry;

namespace SharedLvm.Controller;

/// <summary>Wiring only: configuration, services, endpoints.</summary>
public static class ControllerHost
{
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
          --auto-fence-after SEC    fence a node UNREACHABLE this long holding volumes, at the storage [off]
          --insecure                plaintext, no authentication: development only
          --state-dir DIR           journal, epoch, lvm backups               [/var/lib/sharedlvm]
          --lvm PATH                lvm binary                                [lvm]
          --lvm-timeout SECONDS     kill any lvm command after this           [120]
          --write-queue N           queued writes per pool before refusing    [256]
          --lease MODE              none: the only controller; sanlock: a writer lease on every
                                    pool's LU, any number of controllers, one active      [none]
          --host-id N               sanlock host id of this controller host, 1..250 (sanlock)
          --lease-io-timeout S      sanlock io_timeout; a dead holder's lease frees after
                                    8 x S + 60 s (140 s at 10, 76 s at 2)                    [10]
          --advertise HOST:PORT     the address standbys point clients to         [--listen]
          --pool-devices DEV,...    look for pools (by their lease area) on these devices at
                                    start: a fresh host joins with every pool
          --metrics-listen HOST:PORT  Prometheus /metrics (HTTP/1.1); "" = off [127.0.0.1:7410]
          --otlp-endpoint URL       export traces by OTLP/HTTP to this URL     [off]
          --config FILE             another JSON settings file
          -h, --help                this text

        scripts/pki makes the CA and certificates: API clients carry a role in their certificate
        (reader, operator, admin) or use a bearer token; agents present their node's certificate.
        Mutating and refused calls are audited to STATE_DIR/audit.log.
        Logs go to stderr (journald format under systemd). The API serves grpc.health.v1.Health and
        server reflection (for readers and up). Exit codes: 64 bad usage, 78 bad configuration.
        Without fencing, never move a volume off an unreachable node: see ARCHITECTURE.md.

        """;

    public static readonly DaemonSpec Spec = new(
        "sharedlvm-controller",
        Usage,
        "Controller",
        "/etc/sharedlvm/controller.json",
        new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["--listen"] = "Controller:Listen",
            ["--state-dir"] = "Controller:StateDirectory",
            ["--lvm"] = "Controller:LvmBinary",
            ["--lvm-timeout"] = "Controller:LvmTimeoutSeconds",
            ["--write-queue"] = "Controller:WriteQueueCapacity",
            ["--lease"] = "Controller:Lease",
            ["--host-id"] = "Controller:HostId",
            ["--lease-io-timeout"] = "Controller:LeaseIoTimeoutSeconds",
            ["--advertise"] = "Controller:Advertise",
            ["--pool-devices"] = "Controller:PoolDevices",
            ["--metrics-listen"] = "Controller:MetricsListen",
            ["--otlp-endpoint"] = "Controller:OtlpEndpoint",
            ["--insecure"] = "Controller:Insecure",
            ["--tls-ca"] = "Controller:TlsCa",
            ["--tls-cert"] = "Controller:TlsCertificate",
            ["--tls-key"] = "Controller:TlsKey",
            ["--tokens"] = "Controller:TokensFile",
            ["--auto-fence-after"] = "Controller:AutoFenceAfterSeconds",
        },
        ["--insecure"]);

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = Daemon.CreateBuilder(Spec, args);
        var options = Daemon.Bind<ControllerOptions>(builder, Spec);
        var security = TransportSecurity.Load(options.Insecure, new TlsFiles(options.TlsCa, options.TlsCertificate, options.TlsKey));
        Directory.CreateDirectory(options.StateDirectory);
        GrpcServer.Configure<ControllerStatusMapper>(builder, new GrpcServerSettings(options.Listen, security, ApiAccess.Policy(), options.AuditLogPath)
        {
            TokensFile = options.TokensFile,
            Limits = options.Mutations,
            MaxStreamsPerConnection = options.MaxConcurrentStreams,
        });
        MetricsEndpoint.Configure(builder, options.MetricsListen, new MetricScope(), ControllerMetrics.MeterName);
        Tracing.Configure(builder, Spec.Name, options.OtlpEndpoint);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IProcessRunner, ProcessRunner>();
        services.AddSingleton(_ => new ControllerStore(options.DatabasePath));
        services.AddSingleton(FaultInjector.FromEnvironment());
        services.AddSingleton<ControllerEpoch>();
        if (options.UsesSanlock)
        {
            services.AddSingleton<ISanlock>(_ => new SanlockClient(TimeSpan.FromSeconds((8 * options.LeaseIoTimeoutSeconds) + 90)));
            services.AddSingleton<IWriterLease, SanlockLease>();
        }
        else if (string.Equals(options.Lease, "none", StringComparison.Ordinal))
        {
            services.AddSingleton<IWriterLease, LocalLease>();
        }
        else
        {
            throw new DaemonConfigurationException($"Controller:Lease (--lease) is 'none' or 'sanlock', not '{options.Lease}'.");
        }

        services.AddSingleton<ServingState>();
        services.Configure<global::Grpc.AspNetCore.Server.GrpcServiceOptions>(o => o.Interceptors.Add<StandbyGate>());
        services.AddSingleton<EventBus>();
        services.AddSingleton<WriteMetrics>();
        services.AddSingleton<ControllerRegistration>();
        services.AddSingleton<PoolRegistry>();
        services.AddSingleton(_ => SnapshotSupport.Detect(options.Snapshots));
        services.AddSingleton<VolumeService>();
        services.AddSingleton<NodeDirectory>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeDirectory>());
        services.AddSingleton<NodeHealthService>();
        services.AddSingleton<AgentClients>();
        services.AddSingleton<AttachmentService>();
        services.AddHostedService<AttachmentSettler>();
        services.AddSingleton<IStoragePreempter, AgentPreempter>();
        services.AddSingleton<NodeFencing>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeFencing>());
        services.AddSingleton<ControllerMetrics>();
        services.AddSingleton<ControllerService>();
        services.AddSingleton<NodeRegistryService>();
        services.AddHostedService<ControllerStartup>();
        services.AddSingleton<DataJobs>();
        services.AddHostedService(sp => sp.GetRequiredService<DataJobs>());
        services.AddSingleton<SystemdStatus>(sp => () => (sp.GetRequiredService<IWriterLease>().IsActive ? "active" : "standby") + $", epoch {sp.GetRequiredService<ControllerEpoch>().Value}, {sp.GetRequiredService<PoolRegistry>().All.Count} pools");
        services.AddHostedService<SystemdWatchdog>();
        configure?.Invoke(builder);

        var app = builder.Build();
        // Instruments exist from the start, not from the first API call.
        app.Services.GetRequiredService<ControllerMetrics>();
        GrpcServer.UseTimeoutClamp(app);
        MetricsEndpoint.Map(app);
        app.MapGrpcService<ControllerService>();
        app.MapGrpcService<NodeRegistryService>();
        GrpcServer.MapCommon(app);
        GrpcServer.AnnounceSecurity(app, Spec.Name, options.Listen, "create, delete and move every volume");
        return app;
    }
}
