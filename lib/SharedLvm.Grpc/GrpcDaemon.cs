using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SharedLvm.Grpc;

/// <summary>What every SharedLvm daemon shares: journald logs on stderr, an HTTP/2 listener, health.</summary>
public static class GrpcDaemon
{
    /// <summary>Logging in journald format on stderr, Kestrel HTTP/2 on <paramref name="listen"/>, the gRPC server and health.</summary>
    public static void Configure(WebApplicationBuilder builder, string listen)
    {
        builder.Logging.ClearProviders();
        builder.Logging.AddSystemdConsole(o => o.TimestampFormat = null);
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        var (address, port) = ListenAddress.Parse(listen);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, port, l => l.Protocols = HttpProtocols.Http2);
            kestrel.Limits.Http2.MaxStreamsPerConnection = 256;
        });
        builder.Services.AddSingleton<HealthService>();
        builder.Services.AddGrpcServer();
    }

    /// <summary>Maps grpc.health.v1 and UNIMPLEMENTED for unknown methods; call after the daemon's own services.</summary>
    public static void MapCommonEndpoints(WebApplication app)
    {
        app.MapGrpcService<HealthService>(HealthService.Descriptor);
        app.MapGrpcUnknownMethodFallback();
    }
}
