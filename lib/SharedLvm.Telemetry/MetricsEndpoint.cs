using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using SharedLvm.Grpc;

namespace SharedLvm.Telemetry;

/// <summary>
/// GET /metrics from the OpenTelemetry Prometheus exporter, on the daemon's own HTTP/1.1 listener:
/// Prometheus scrapes over HTTP/1.1, the gRPC listener is HTTP/2 only. The endpoint answers only
/// connections accepted by the metrics listener: the exporter's own filter keys on the Host header,
/// which any client can set, and a spoofed Host reached the metrics through a gRPC port in a test.
/// An empty address turns the endpoint off.
/// </summary>
public static class MetricsEndpoint
{
    /// <summary>Meters that every SharedLvm daemon exposes besides its own: gRPC calls and external commands.</summary>
    public static readonly string[] SharedMeters = ["SharedLvm.Grpc", "SharedLvm.Os"];

    public const string Path = "/metrics";

    private static readonly object MetricsConnection = new();

    public static void Configure(WebApplicationBuilder builder, string listen, MetricScope scope, params string[] meters)
    {
        builder.Services.AddSingleton(scope);
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddAttributes(scope.ConstantLabels.Select(l => new KeyValuePair<string, object>(l.Key, l.Value))))
            .WithMetrics(metrics =>
            {
                foreach (var meter in SharedMeters.Concat(meters))
                {
                    metrics.AddMeter(meter);
                }

                metrics.AddView(instrument => instrument.Meter.Scope is MetricScope other && !ReferenceEquals(other, scope) ? MetricStreamConfiguration.Drop : null);
                metrics.AddPrometheusExporter(o =>
                {
                    // Series names and labels as before the exporter: no otel_scope_* labels, no
                    // target_info, and the host's constant labels (node) on every series.
                    o.ScopeInfoEnabled = false;
                    o.TargetInfoEnabled = false;
                    o.ResourceConstantLabels = key => scope.ConstantLabels.Any(l => l.Key == key);
                    // Every scrape sees the state of that moment (tests scrape right after a change).
                    o.ScrapeResponseCacheDurationMilliseconds = 0;
                });
            });
        if (string.IsNullOrWhiteSpace(listen))
        {
            return;
        }

        var (address, port) = ListenAddress.Parse(listen, "--metrics-listen");
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address, port, l =>
        {
            l.Protocols = HttpProtocols.Http1;
            l.Use(next => connection =>
            {
                connection.Items[MetricsConnection] = true;
                return next(connection);
            });
        }));
    }

    public static void Map(WebApplication app) =>
        app.UseOpenTelemetryPrometheusScrapingEndpoint(http =>
            http.Request.Path == Path
            && http.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(MetricsConnection) == true);
}
