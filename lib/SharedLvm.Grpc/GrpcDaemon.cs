using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Grpc;

/// <summary>What every SharedLvm daemon shares: journald logs on stderr, an HTTP/2 listener, health.</summary>
public static class GrpcDaemon
{
    /// <summary>
    /// Logging in journald format on stderr, Kestrel HTTP/2 on <paramref name="listen"/> (over TLS
    /// unless <paramref name="security"/> is plaintext), the gRPC server and health.
    /// </summary>
    public static void Configure(WebApplicationBuilder builder, string listen, TransportSecurity security, int maxStreamsPerConnection = 100)
    {
        builder.Logging.ClearProviders();
        builder.Logging.AddSystemdConsole(o => o.TimestampFormat = null);
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        var (address, port) = ListenAddress.Parse(listen);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                security.Tls?.UseOn(l);
            });
            // One client can't hold more calls open than this per connection (watches included).
            kestrel.Limits.Http2.MaxStreamsPerConnection = maxStreamsPerConnection;
        });
        builder.Services.AddSingleton(security);
        builder.Services.AddSingleton<HealthService>();
        builder.Services.AddGrpcServer();
    }

    /// <summary>Maps grpc.health.v1 and UNIMPLEMENTED for unknown methods; call after the daemon's own services.</summary>
    public static void MapCommonEndpoints(WebApplication app)
    {
        app.MapGrpcService<HealthService>(HealthService.Descriptor);
        app.MapGrpcUnknownMethodFallback();
    }

    /// <summary>The call gate: who may call what (<paramref name="policy"/>), audited to <paramref name="auditFile"/>.</summary>
    public static void AddCallGate(WebApplicationBuilder builder, AccessPolicy policy, string auditFile, string? tokensFile = null, MutationLimits? limits = null)
    {
        builder.Services.AddSingleton<IServerCallGate>(sp =>
        {
            var logs = sp.GetRequiredService<ILoggerFactory>();
            var security = sp.GetRequiredService<TransportSecurity>();
            var logger = logs.CreateLogger("SharedLvm.Security");
            // Tokens travel in headers: over plaintext they would be readable by anyone on the path.
            var tokens = tokensFile is null || security.Tls is null ? null : new BearerTokens(tokensFile, TimeProvider.System, logger);
            var audit = new AuditLog(auditFile, TimeProvider.System, logs.CreateLogger("SharedLvm.Audit"));
            return new CallGate(security.Tls, tokens, policy, audit, limits ?? new MutationLimits(), logger);
        });
    }

    /// <summary>Says at start how the daemon is reachable; loudly when it authenticates nobody.</summary>
    public static void AnnounceSecurity(WebApplication app, string daemon, string listen, string exposure)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("SharedLvm.Security");
        var security = app.Services.GetRequiredService<TransportSecurity>();
        if (security.Tls is null)
        {
            SecurityLog.Insecure(logger, daemon, listen, exposure);
        }
        else if (security.Tls.Certificate is { } certificate)
        {
            SecurityLog.Tls(logger, daemon, listen, security.Tls.Identity?.ToString() ?? "?", security.Tls.Authority.Subject);
            var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
            GrpcServerMetrics.ObserveCertificate(security.Tls.Identity?.Name ?? certificate.Subject, notAfter);
            if (notAfter - DateTimeOffset.UtcNow < TimeSpan.FromDays(14))
            {
                SecurityLog.ExpiresSoon(logger, daemon, notAfter);
            }
        }
    }

    /// <summary>Turns bare boolean switches (--insecure) into --insecure=true for the configuration binder.</summary>
    public static string[] ExpandFlags(string[] args, params string[] flags) =>
        args.Select(a => flags.Contains(a, StringComparer.Ordinal) ? a + "=true" : a).ToArray();
}

internal static partial class SecurityLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "{Daemon}'s TLS certificate expires on {NotAfter:u}: reissue it with scripts/pki before peers start refusing it")]
    public static partial void ExpiresSoon(ILogger logger, string daemon, DateTimeOffset notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "INSECURE: {Daemon} serves plaintext gRPC on {Listen} and authenticates nobody; anyone who can reach it can {Exposure}. --insecure is for local development only: scripts/pki makes the certificates for mutual TLS.")]
    public static partial void Insecure(ILogger logger, string daemon, string listen, string exposure);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Daemon} serves gRPC over mutual TLS on {Listen} as {Identity}; peers are verified against {Authority}")]
    public static partial void Tls(ILogger logger, string daemon, string listen, string identity, string authority);
}
