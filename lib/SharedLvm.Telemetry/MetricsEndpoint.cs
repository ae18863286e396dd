using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Grpc;

namespace SharedLvm.Telemetry;

/// <summary>
/// GET /metrics on its own HTTP/1.1 listener of the daemon's Kestrel: Prometheus scrapes over
/// HTTP/1.1, while the gRPC listener is HTTP/2 only (cleartext HTTP/2 can't share a port with
/// HTTP/1.1 without TLS to negotiate). An empty address turns the endpoint off.
/// </summary>
public static class MetricsEndpoint
{
    /// <summary>Meters that every SharedLvm daemon exposes besides its own: gRPC calls and external commands.</summary>
    public static readonly string[] SharedMeters = ["SharedLvm.Grpc", "SharedLvm.Os"];

    public static void Configure(WebApplicationBuilder builder, string listen, MetricScope scope, params string[] meters)
    {
        builder.Services.AddSingleton(scope);
        builder.Services.AddSingleton(new PrometheusScraper(scope, [.. SharedMeters, .. meters]));
        if (string.IsNullOrWhiteSpace(listen))
        {
            return;
        }

        var (address, port) = ListenAddress.Parse(listen, "--metrics-listen");
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address, port, l => l.Protocols = HttpProtocols.Http1));
    }

    public static void Map(WebApplication app)
    {
        app.MapGet("/metrics", (HttpContext http, PrometheusScraper scraper) =>
        {
            // Only the metrics listener answers; the gRPC port keeps speaking gRPC only.
            if (http.Request.Protocol is not ("HTTP/1.1" or "HTTP/1.0"))
            {
                return Results.NotFound();
            }

            return Results.Text(scraper.Scrape(), PrometheusText.ContentType);
        });
    }
}
