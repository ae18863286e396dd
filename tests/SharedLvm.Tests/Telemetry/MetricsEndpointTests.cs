using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using SharedLvm.Telemetry;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Telemetry;

/// <summary>
/// The exposition text is a public API: its exact shape through the OpenTelemetry Prometheus
/// exporter is pinned here (as opentelemetry-dotnet does), so a new exporter beta can't change
/// series names or labels unnoticed. The endpoint answers only on the metrics listener.
/// </summary>
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Counters_gauges_and_histograms_render_with_todays_names_and_the_node_label()
    {
        // Series names are today's (counters _total, histograms _bucket/_sum/_count, no unit suffix
        // added twice, no otel_scope_* labels, no target_info); the host's node label is on every
        // series, after the instrument's own labels (the exporter writes resource labels last).
        var name = "SharedLvm.Test." + Guid.NewGuid().ToString("N");
        var scope = new MetricScope(new KeyValuePair<string, string>("node", "node-a"));
        using var meter = scope.CreateMeter(name);
        var calls = meter.CreateCounter<long>("test_calls", "{call}", "Calls by code.");
        var latency = meter.CreateHistogram("test_latency_seconds", "s", "Latency.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1] });
        meter.CreateObservableGauge("test_paths", () => new Measurement<int>(2, new KeyValuePair<string, object?>("wwid", "3600a\"x\\y\nz")), "{path}", "Paths;\nper LU.");

        // Measurements count from the moment the host's meter provider listens.
        await using var host = await MetricsHost.StartAsync(scope, name);
        calls.Add(3, new KeyValuePair<string, object?>("code", "OK"));
        latency.Record(0.05);
        latency.Record(0.5);
        latency.Record(5);
        var text = await host.ScrapeAsync();

        var ours = string.Join('\n', text.Split('\n').Where(l => l.Contains("test_", StringComparison.Ordinal))) + "\n";
        Assert.Equal(
            """
            # TYPE test_calls_total counter
            # HELP test_calls_total Calls by code.
            test_calls_total{code="OK",node="node-a"} 3
            # TYPE test_latency_seconds histogram
            # HELP test_latency_seconds Latency.
            test_latency_seconds_bucket{node="node-a",le="0.1"} 1
            test_latency_seconds_bucket{node="node-a",le="1"} 2
            test_latency_seconds_bucket{node="node-a",le="+Inf"} 3
            test_latency_seconds_sum{node="node-a"} 5.55
            test_latency_seconds_count{node="node-a"} 3
            # TYPE test_paths gauge
            # HELP test_paths Paths;\nper LU.
            test_paths{wwid="3600a\"x\\y\nz",node="node-a"} 2

            """.Replace("\r", string.Empty, StringComparison.Ordinal),
            ours);
    }

    [Fact]
    public async Task A_host_sees_its_own_scope_and_not_another_hosts_in_the_same_process()
    {
        var name = "SharedLvm.Test." + Guid.NewGuid().ToString("N");
        var mine = new MetricScope();
        var theirs = new MetricScope();
        using var myMeter = mine.CreateMeter(name);
        using var theirMeter = theirs.CreateMeter(name);
        myMeter.CreateObservableGauge("test_mine", () => 1);
        theirMeter.CreateObservableGauge("test_theirs", () => 1);

        await using var host = await MetricsHost.StartAsync(mine, name);
        var text = await host.ScrapeAsync();
        Assert.Contains("test_mine{} 1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("test_theirs", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_the_metrics_listener_answers_whatever_the_host_header_says()
    {
        var name = "SharedLvm.Test." + Guid.NewGuid().ToString("N");
        await using var host = await MetricsHost.StartAsync(new MetricScope(), name);
        using var http = new HttpClient();
        using var spoofed = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{host.OtherPort}/metrics");
        spoofed.Headers.Host = $"127.0.0.1:{host.MetricsPort}";
        using var response = await http.SendAsync(spoofed);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{host.MetricsPort}/metrics")).StatusCode);
    }

    /// <summary>A web host with the daemons' metrics endpoint and one other HTTP/1.1 listener.</summary>
    private sealed class MetricsHost(WebApplication app, int metricsPort, int otherPort) : IAsyncDisposable
    {
        public int MetricsPort => metricsPort;

        public int OtherPort => otherPort;

        public static async Task<MetricsHost> StartAsync(MetricScope scope, string meter)
        {
            var metricsPort = FreePort.Next();
            var otherPort = FreePort.Next();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, otherPort, l => l.Protocols = HttpProtocols.Http1));
            MetricsEndpoint.Configure(builder, $"127.0.0.1:{metricsPort}", scope, meter);
            var app = builder.Build();
            MetricsEndpoint.Map(app);
            await app.StartAsync();
            return new MetricsHost(app, metricsPort, otherPort);
        }

        public async Task<string> ScrapeAsync()
        {
            using var http = new HttpClient();
            return await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        }

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
