using Grpc.AspNetCore.Server;
using Grpc.AspNetCore.Server.Model;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;
using SharedLvm.Hosting.Security;

namespace SharedLvm.Hosting;

/// <summary>What a daemon's gRPC listener needs: where, how secured, who may call what, audited where.</summary>
public sealed record GrpcServerSettings(string Listen, TransportSecurity Security, AccessPolicy Policy, string AuditFile)
{
    /// <summary>API bearer tokens (controller only); null: certificates only.</summary>
    public string? TokensFile { get; init; }

    public MutationLimits Limits { get; init; } = new();

    /// <summary>Concurrent calls (HTTP/2 streams) one connection may hold open, watches included.</summary>
    public int MaxStreamsPerConnection { get; init; } = 100;

    /// <summary>
    /// Upper bound on any unary call, with or without a client deadline, so no server-side wait is
    /// unbounded. Streaming calls (watches) are exempt.
    /// </summary>
    public TimeSpan MaxUnaryCall { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// Every daemon's gRPC server: Grpc.AspNetCore on a Kestrel HTTP/2 listener over mutual TLS (unless
/// plaintext was asked for), 4 MiB messages, keep-alive pings, the call gate and the status mapping
/// on every call, grpc.health.v1 and server reflection.
/// </summary>
public static class GrpcServer
{
    public static void Configure<TMapper>(WebApplicationBuilder builder, GrpcServerSettings settings)
        where TMapper : class, IStatusMapper
    {
        var (address, port) = ListenAddress.Parse(settings.Listen);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                if (settings.Security.Tls is { } tls)
                {
                    KestrelTls.Use(l, tls);
                }
            });
            kestrel.Limits.Http2.MaxStreamsPerConnection = settings.MaxStreamsPerConnection;
            // A client that vanished without closing its connection (power loss, a frozen host) is
            // noticed within delay + timeout, and its watches end.
            kestrel.Limits.Http2.KeepAlivePingDelay = Channels.KeepAlivePingDelay;
            kestrel.Limits.Http2.KeepAlivePingTimeout = Channels.KeepAlivePingTimeout;
        });
        builder.Services.AddSingleton(settings.Security);
        builder.Services.AddSingleton(settings.Policy);
        builder.Services.AddSingleton<IStatusMapper, TMapper>();
        builder.Services.AddSingleton<StatusMappingInterceptor>();
        builder.Services.AddSingleton(sp =>
        {
            var logs = sp.GetRequiredService<ILoggerFactory>();
            var logger = logs.CreateLogger("SharedLvm.Security");
            // Tokens travel in headers: over plaintext they would be readable by anyone on the path.
            var tokens = settings.TokensFile is null || settings.Security.Tls is null ? null : new BearerTokens(settings.TokensFile, TimeProvider.System, logger);
            var audit = new AuditLog(settings.AuditFile, TimeProvider.System, logs.CreateLogger("SharedLvm.Audit"));
            return new CallGate(settings.Security.Tls, tokens, settings.Policy, audit, settings.Limits, settings.MaxUnaryCall, logs.CreateLogger("SharedLvm.Grpc.Server"));
        });
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = Channels.MaxMessageSize;
            o.MaxSendMessageSize = Channels.MaxMessageSize;
            o.EnableDetailedErrors = false;
            // Outermost first: the gate sees the status the mapping produced.
            o.Interceptors.Add<CallGate>();
            o.Interceptors.Add<StatusMappingInterceptor>();
        });
        builder.Services.RemoveAll(typeof(IServiceMethodProvider<>));
        builder.Services.AddSingleton(typeof(IServiceMethodProvider<>), typeof(SafeParsingMethodProvider<>));
        builder.Services.AddGrpcReflection();
        builder.Services.AddSingleton(_ =>
        {
            // "" is the whole server: serving from the moment it listens (hosted services, such as
            // the controller's start-up, have finished by then). Daemons add their services' states.
            var health = new HealthServiceImpl();
            health.SetStatus(string.Empty, global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving);
            return health;
        });
    }

    /// <summary>
    /// After the daemon mapped its own services: health, reflection, and the check that every mapped
    /// method has an access rule (a new RPC fails start-up until someone decides who may call it).
    /// </summary>
    public static void MapCommon(WebApplication app)
    {
        app.MapGrpcService<HealthServiceImpl>();
        app.MapGrpcReflectionService();
        var policy = app.Services.GetRequiredService<AccessPolicy>();
        var uncovered = MappedMethods(app).Where(path => !policy.Covers(path)).ToArray();
        if (uncovered.Length > 0)
        {
            throw new InvalidOperationException($"gRPC methods without an access rule: {string.Join(", ", uncovered)}");
        }
    }

    /// <summary>Must run before routing: see <see cref="GrpcTimeoutClamp"/>.</summary>
    public static void UseTimeoutClamp(WebApplication app) => app.Use(GrpcTimeoutClamp.InvokeAsync);

    /// <summary>The paths of every gRPC method this app maps.</summary>
    public static IReadOnlyList<string> MappedMethods(IEndpointRouteBuilder app) =>
        app.DataSources.SelectMany(d => d.Endpoints)
            .Select(e => e.Metadata.GetMetadata<GrpcMethodMetadata>())
            .OfType<GrpcMethodMetadata>()
            .Select(m => m.Method.FullName)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToArray();

    /// <summary>Says at start how the daemon is reachable; loudly when it authenticates nobody.</summary>
    public static void AnnounceSecurity(WebApplication app, string daemon, string listen, string exposure)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("SharedLvm.Security");
        var security = app.Services.GetRequiredService<TransportSecurity>();
        if (security.Tls is null)
        {
            HostingLog.Insecure(logger, daemon, listen, exposure);
        }
        else if (security.Tls.Certificate is { } certificate)
        {
            HostingLog.Tls(logger, daemon, listen, security.Tls.Identity?.ToString() ?? "?", security.Tls.Authority.Subject);
            var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
            GrpcServerMetrics.ObserveCertificate(security.Tls.Identity?.Name ?? certificate.Subject, notAfter);
            if (notAfter - DateTimeOffset.UtcNow < TimeSpan.FromDays(14))
            {
                HostingLog.ExpiresSoon(logger, daemon, notAfter);
            }
        }
    }
}
